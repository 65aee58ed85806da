"""Runs own their directory: one run at a time, stale locks taken over, leftovers cleaned."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from elman.cli import app

_HOLD = """
import sys, time
from elman.run_lock import locked
with locked(sys.argv[1], "elman run --data sensor:basicmotions " + sys.argv[1]):
    print("holding", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture()
def run(bm_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(bm_run, copy)
    return copy


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_a_second_run_into_a_directory_in_use_is_refused(run):
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(run)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"
        before = sorted(p.name for p in run.iterdir())
        for args in (["codegen", str(run)], ["train", "--epochs", "1", str(run)],
                     ["run", "--from", "codegen", str(run)]):
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 1, result.output
            assert re.fullmatch(
                rf"error: run directory {re.escape(str(run))} is in use by pid {holder.pid} on "
                rf"{re.escape(socket.gethostname())} \(`elman run --data sensor:basicmotions "
                rf"{re.escape(str(run))}`, since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC\); wait "
                r"for it to finish or stop it, or choose another run directory\n",
                result.output), result.output
        assert sorted(p.name for p in run.iterdir()) == before
        # the Python API checks too
        from elman.firmware_codegen.api import codegen_run

        from elman.run_lock import RunDirectoryBusy

        with pytest.raises(RunDirectoryBusy, match=f"in use by pid {holder.pid}"):
            codegen_run(run)
    finally:
        holder.communicate("\n", timeout=60)
    assert not (run / ".elman.lock").exists()
    assert CliRunner().invoke(app, ["codegen", str(run)]).exit_code == 0


def test_a_lock_left_by_a_dead_run_is_taken_over(run):
    pid = _dead_pid()
    (run / ".elman.lock").write_text(json.dumps({
        "pid": pid, "host": socket.gethostname(), "command": "elman run runs/x",
        "since": "2026-11-30 12:00:00 UTC"}))
    result = CliRunner().invoke(app, ["codegen", str(run)])
    assert result.exit_code == 0, result.output
    assert (f"note: {run} was locked by pid {pid} on {socket.gethostname()} (`elman run "
            "runs/x`, since 2026-11-30 12:00:00 UTC), which is no longer running; taking the "
            "lock over") in result.output
    assert not (run / ".elman.lock").exists()
    assert (run / "c" / "elman_model.c").is_file()


def test_leftovers_of_killed_runs_are_cleaned_by_the_next_run(run, tmp_path):
    pid = _dead_pid()
    staging = run / f".staging-{pid}-0bad"
    (staging / "new" / "c").mkdir(parents=True)
    (staging / "new" / "c" / "elman_model.c").write_text("/* half */")
    temporaries = tmp_path / "tmp"
    (temporaries / f"elman-{pid}-x1y2" / "cc").mkdir(parents=True)
    (temporaries / "unrelated").mkdir()
    env = {**os.environ, "TMPDIR": str(temporaries)}
    result = subprocess.run([sys.executable, "-m", "elman.cli", "codegen", str(run)],
                            capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert f"note: removed {staging}, left by an interrupted stage" in result.stderr
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    assert sorted(p.name for p in temporaries.iterdir()) == ["unrelated"]
