"""Two `elman search --storage postgresql://...` workers join one study on a real PostgreSQL
server (Debian's postgresql, started here with initdb / pg_ctl in a temporary directory, on
127.0.0.1) and together train exactly the requested trials, none twice."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest

TRIALS = 3
ARGS = ["--data", "sensor:basicmotions", "--cpu", "cortex-m0plus", "--flash", "12K",
        "--ram", "1K", "--epochs", "3", "--max-units", "12", "--trials", str(TRIALS),
        "--jobs", "1"]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed: `scripts/system-deps.sh --with-optional` "
                    "installs Debian's postgresql (as root)")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="elman-pg-"))
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as 'postgres'
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as a user")
        try:
            import pwd

            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)

    run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "elman", "--no-sync")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
        "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -F", "start")
    try:
        yield f"postgresql://elman@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_one_study_and_train_each_trial_once(postgres_url, tmp_path):
    dirs = [tmp_path / "machine-a", tmp_path / "machine-b"]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = []
    for d, log in zip(dirs, logs, strict=True):
        with open(log, "w") as f:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "elman.cli", "search", *ARGS, "--storage", postgres_url,
                 str(d)], stdout=f, stderr=subprocess.STDOUT))
    for p, log in zip(procs, logs, strict=True):
        assert p.wait(timeout=1200) == 0, log.read_text()[-3000:]

    study = optuna.load_study(study_name="elman-search", storage=postgres_url)
    trained = [t for t in study.get_trials()
               if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
               and "rejected" not in t.user_attrs]
    assert sorted(t.user_attrs["slot"] for t in trained) == list(range(TRIALS))
    assert not [t for t in study.get_trials() if t.state == optuna.trial.TrialState.FAIL]
    # each trained trial has one run directory on one "machine": no trial ran twice
    run_dirs = sorted(str(p) for d in dirs for p in (d / "trials").glob("*"))
    assert run_dirs == sorted(t.user_attrs["run_dir"] for t in trained)
    assert len({t.number for t in trained}) == TRIALS
    # both workers shared the work and each wrote the whole study's report
    assert all(any((d / "trials").glob("*")) for d in dirs)
    for d in dirs:
        report = json.loads((d / "search_report.json").read_text())
        assert report["trained"] == TRIALS and report["slots"] == TRIALS
        assert report["best"] is not None
