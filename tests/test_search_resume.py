"""A search killed mid-trial (SIGKILL), then interrupted (Ctrl-C: SIGINT to its process group),
continues when the same command is run again, without repeating a finished trial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

ARGS = ["--data", "sensor:basicmotions", "--cpu", "cortex-m0plus", "--flash", "12K",
        "--ram", "1K", "--epochs", "3", "--max-units", "12", "--trials", "3", "--jobs", "1"]


def start(out: Path, log: Path) -> subprocess.Popen:
    with open(log, "w") as f:
        return subprocess.Popen([sys.executable, "-m", "elman.cli", "search", *ARGS, str(out)],
                                stdout=f, stderr=subprocess.STDOUT, start_new_session=True)


def trials(out: Path) -> list[optuna.trial.FrozenTrial]:
    if not (out / "study.db").exists():
        return []
    try:
        study = optuna.load_study(study_name="elman-search", storage=f"sqlite:///{out}/study.db")
        return study.get_trials()
    except Exception:  # the study is being created
        return []


def wait_until(what: str, condition, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the search ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def finished(out: Path) -> dict[int, dict]:
    """Trained trials by number: their slot, parameters and model file's modification time."""
    done = {}
    for t in trials(out):
        if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) \
                and "rejected" not in t.user_attrs:
            model = Path(t.user_attrs["run_dir"]) / "model.keras"
            done[t.number] = {"slot": t.user_attrs["slot"], "params": t.params,
                              "mtime": model.stat().st_mtime_ns if model.exists() else None}
    return done


def training_now(out: Path) -> bool:
    """A trial is past its footprint check and training (it has its run directory)."""
    return any(t.state == optuna.trial.TrialState.RUNNING and "run_dir" in t.user_attrs
               for t in trials(out))


def workers_of(out: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "elman.search.worker" in cmd and str(out) in cmd:
                pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc to find the workers")
def test_killed_and_interrupted_search_resumes_without_repeating_finished_trials(tmp_path):
    out = tmp_path / "s"
    first = start(out, tmp_path / "1.log")
    wait_until("a finished trial and another one training",
               lambda: len(finished(out)) >= 1 and training_now(out), first)
    os.kill(first.pid, signal.SIGKILL)  # a crash of `elman search` itself
    first.wait()
    deadline = time.monotonic() + 30
    while workers_of(out) and time.monotonic() < deadline:  # workers die with their parent
        time.sleep(0.2)
    assert workers_of(out) == []
    after_kill = finished(out)

    second = start(out, tmp_path / "2.log")
    wait_until("another finished trial and one training",
               lambda: len(finished(out)) > len(after_kill) and training_now(out), second)
    os.killpg(second.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
    assert second.wait(timeout=120) == 130
    log2 = (tmp_path / "2.log").read_text()
    assert "interrupted: rerun the same command" in log2 and "Traceback" not in log2
    assert "trial(s) interrupted earlier" in log2
    after_interrupt = finished(out)

    third = start(out, tmp_path / "3.log")
    assert third.wait(timeout=900) == 0, (tmp_path / "3.log").read_text()[-3000:]
    final = finished(out)
    # every trial finished before an interruption is still there, never trained again
    for number, before in {**after_kill, **after_interrupt}.items():
        assert final[number] == before
    # each of the 3 slots trained exactly once
    assert sorted(f["slot"] for f in final.values()) == [0, 1, 2]
    states = [t.state for t in trials(out)]
    assert states.count(optuna.trial.TrialState.FAIL) == 2  # the killed and interrupted ones
    import json

    report = json.loads((out / "search_report.json").read_text())
    assert report["counts"].get("interrupted") == 2 and report["trained"] == 3
