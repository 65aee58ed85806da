import os
import signal
import subprocess
import sys

import pytest

from elman.files import recover, staged_outputs


def test_staged_outputs_commit_together(tmp_path):
    run = tmp_path / "run"
    with staged_outputs(run) as stage:
        stage.write_text("a.txt", "A")
        stage.write_json("b.json", {"z": 1, "a": [1, 2]})
        assert not (run / "a.txt").exists()
    assert (run / "a.txt").read_text() == "A"
    assert (run / "b.json").read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "z": 1\n}\n'
    assert sorted(p.name for p in run.iterdir()) == ["a.txt", "b.json"]


def test_staged_outputs_leave_nothing_on_error(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(RuntimeError), staged_outputs(run) as stage:
        stage.write_text("a.txt", "A")
        raise RuntimeError("boom")
    assert not run.exists()


def test_staged_outputs_keep_older_files_on_error(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError), staged_outputs(run) as stage:
        stage.write_text("keep.txt", "new")
        raise RuntimeError("boom")
    assert [p.name for p in run.iterdir()] == ["keep.txt"]
    assert (run / "keep.txt").read_text() == "old"


# ---- the commit is atomic as a whole ---------------------------------------------------


def _old_run(tmp_path):
    run = tmp_path / "run"
    (run / "c").mkdir(parents=True)
    for name in ("c/a_io.c", "c/a_model.c", "c/a_model.h", "report.json"):
        (run / name).write_text(f"old {name}")
    return run


def _contents(run):
    return {p.relative_to(run).as_posix(): p.read_text() for p in sorted(run.rglob("*"))
            if p.is_file()}


def test_a_commit_failing_halfway_leaves_every_old_file(tmp_path, monkeypatch):
    """A rename refused in the middle of a commit: nothing of the new set stays."""
    import elman.files

    run = _old_run(tmp_path)
    before = _contents(run)
    real, calls = os.replace, []

    def fail_on_the_fourth(src, dst):
        calls.append(dst)
        if len(calls) == 4:
            raise PermissionError(13, "Permission denied", str(dst))
        return real(src, dst)

    monkeypatch.setattr(elman.files.os, "replace", fail_on_the_fourth)
    with pytest.raises(PermissionError), staged_outputs(run, subdir="c") as stage:
        for name in ("a_io.c", "a_model.c", "a_model.h"):
            stage.write_text(name, f"new {name}")
    monkeypatch.setattr(elman.files.os, "replace", real)
    assert _contents(run) == before
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []


_KILLED_MID_COMMIT = """
import os, signal, sys
import elman.files
real, placed = os.replace, []
def replace(src, dst):
    if "/new/" in str(src):
        placed.append(dst)
        if len(placed) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst)
elman.files.os.replace = replace
with elman.files.staged_outputs(sys.argv[1], subdir="c") as stage:
    for name in ("a_io.c", "a_model.c", "a_model.h"):
        stage.write_text(name, "new " + name)
    stage.remove("report.json")
"""


def test_a_commit_killed_halfway_is_finished_by_the_next_stage(tmp_path):
    run = _old_run(tmp_path)
    proc = subprocess.run([sys.executable, "-c", _KILLED_MID_COMMIT, str(run)], check=False)
    assert proc.returncode == -signal.SIGKILL
    mixed = _contents(run)
    assert mixed["c/a_io.c"] == "new a_io.c" and mixed["c/a_model.h"] == "old c/a_model.h"
    assert recover(run) == [f"finished the interrupted commit of 3 file(s) in {run}"]
    assert _contents(run) == {"c/a_io.c": "new a_io.c", "c/a_model.c": "new a_model.c",
                              "c/a_model.h": "new a_model.h"}
    assert [p.name for p in run.iterdir()] == ["c"]


def test_staging_directories_of_dead_processes_are_removed(tmp_path):
    run = _old_run(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    (run / f".staging-{dead_pid}-abcd" / "new").mkdir(parents=True)
    (run / f".staging-{dead_pid}-abcd" / "new" / "model.keras").write_text("half")
    (run / "c" / ".staging-k2j4l1x9").mkdir()  # the format of elman 0.1.0
    (run / ".staging-1-beef").mkdir()  # pid 1 is alive: a stage in progress
    before = _contents(run)
    assert sorted(recover(run)) == [
        f"removed {run / f'.staging-{dead_pid}-abcd'}, left by an interrupted stage",
        f"removed {run / 'c' / '.staging-k2j4l1x9'}, left by an interrupted stage"]
    assert sorted(p.name for p in run.iterdir()) == [".staging-1-beef", "c", "report.json"]
    assert _contents(run) == {k: v for k, v in before.items() if "staging" not in k}


def test_a_subdirectory_and_top_level_files_commit_together(tmp_path):
    run = _old_run(tmp_path)
    with staged_outputs(run, subdir="c") as stage:
        stage.write_text("b_model.c", "new b")
        stage.root_path("ledger.json").write_text("{}")
        stage.remove("report.json")
        stage.remove("c/a_io.c")
    assert _contents(run) == {"c/a_model.c": "old c/a_model.c", "c/a_model.h": "old c/a_model.h",
                              "c/b_model.c": "new b", "ledger.json": "{}"}
