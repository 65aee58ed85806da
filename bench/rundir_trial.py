"""Run directories under stress: Ctrl-C at many moments, kill -9, concurrent runs.

    .venv/bin/python bench/rundir_trial.py [--quick] [--out bench/results/rundir_trial.json]

Every case runs the real ``elman`` console entry (``python -m elman.cli``) on real
data (BasicMotions, a tiny model) in a fresh directory with its own ``$TMPDIR``:

- **interrupts**: SIGINT after a delay, or when a stage's progress line appears;
  counted as clean when the exit status is 130, nothing like a traceback is
  printed, the run directory has no staging directory, no lock file, no file
  outside the ledger and no file whose SHA-256 differs from it, and ``$TMPDIR``
  is empty. An interrupt that lands in the Python interpreter's own start-up
  (``site`` and its ``.pth`` files, before any elman code runs) is counted
  apart: Python itself prints ``Fatal Python error: init_import_site`` there,
  or the signal's default action ends the process (exit -2);
- **kill -9** in the middle of a stage, then the same command again: the second
  run must clean what the first left (staging directories, temporaries) and
  finish;
- **concurrent runs**: two ``elman run`` (or ``elman run`` and a stage command)
  into one directory at once: the second must be refused (exit 1, "in use by")
  and the first must finish.

Prints a table and writes JSON. Wall-clock numbers depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = ["run", "--data", "sensor:basicmotions", "--units", "4", "--epochs", "3",
        "--limit", "4", "--cpu", "cortex-m4", "--profile", "tflm"]
STAGE_LINES = ["[1/6] train:", "[2/6] quantize:", "[3/6] codegen:", "[4/6] verify:",
               "[5/6] mcu:", "[6/6] report:"]
DELAYS = [0.0, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3, 0.6, 1.0, 2.0, 3.0, 5.0, 8.0]


def elman(args: list[str], tmp: Path) -> subprocess.Popen:
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "elman.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def stale_files(run: Path, tmp: Path) -> list[str]:
    """What an interrupted or killed run left that it should not have."""
    from elman.provenance import load_ledger, sha256_file

    left = [f"$TMPDIR/{p.name}" for p in tmp.iterdir()]
    if not run.exists():
        return left
    left += [p.name for p in run.iterdir() if p.name.startswith(".")]
    try:
        ledger = load_ledger(run) or {"stages": {}}
    except Exception as exc:  # noqa: BLE001 - a damaged ledger is a finding
        return left + [f"provenance.json ({exc})"]
    recorded = {rel: sha for record in ledger["stages"].values()
                for rel, sha in record["outputs"].items()}
    files = {p.relative_to(run).as_posix() for p in run.rglob("*")
             if p.is_file() and not p.relative_to(run).parts[0].startswith(".")}
    left += sorted(files - set(recorded) - {"provenance.json"})
    left += [f"{rel} (changed)" for rel, sha in recorded.items()
             if not (run / rel).is_file() or sha256_file(run / rel) != sha]
    return left


def interrupt(base: Path, when: float | str) -> dict:
    case = base / f"int-{str(when).strip('[]:/ ').replace('/', '-').replace(' ', '-')}"
    run, tmp = case / "run", case / "tmp"
    tmp.mkdir(parents=True)
    proc = elman([*TINY, str(run)], tmp)
    seen: list[str] = []
    start = time.perf_counter()
    if isinstance(when, float):
        time.sleep(when)
    else:
        for line in proc.stderr:
            seen.append(line)
            if when in line:
                break
    sent = time.perf_counter() - start
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    text = "".join(seen) + err + out
    left = stale_files(run, tmp)
    startup = "init_import_site" in text or proc.returncode == -signal.SIGINT
    return {"when": when, "sent_after_s": round(sent, 2), "exit": proc.returncode,
            "traceback": "Traceback" in text or "KeyboardInterrupt" in text,
            "interpreter_startup": startup, "stale": left,
            "clean": proc.returncode == 130 and "Traceback" not in text and not left}


def kill_and_rerun(base: Path, line: str) -> dict:
    case = base / f"kill-{line.strip('[]:/ ').replace('/', '-').replace(' ', '-')}"
    run, tmp = case / "run", case / "tmp"
    tmp.mkdir(parents=True)
    proc = elman([*TINY, str(run)], tmp)
    for out in proc.stderr:
        if line in out:
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=120)
    left_by_kill = [p.name for p in run.iterdir() if p.name.startswith(".")] + \
        [f"$TMPDIR/{p.name}" for p in tmp.iterdir()] if run.exists() else []
    again = elman(["run", "--data", "sensor:basicmotions", "--units", "4", "--epochs", "3",
                   "--limit", "4", "--cpu", "cortex-m4", "--profile", "tflm", "--quiet",
                   str(run)], tmp)
    out, err = again.communicate(timeout=1200)
    return {"killed_at": line, "left_by_kill": left_by_kill, "rerun_exit": again.returncode,
            "stale_after_rerun": stale_files(run, tmp),
            "clean": again.returncode == 0 and not stale_files(run, tmp)}


def concurrent(base: Path, second: list[str], index: int) -> dict:
    case = base / f"concurrent-{index}"
    run, tmp = case / "run", case / "tmp"
    tmp.mkdir(parents=True)
    first = elman([*TINY, "--quiet", str(run)], tmp)
    deadline = time.perf_counter() + 120
    while not (run / ".elman.lock").exists() and time.perf_counter() < deadline:
        time.sleep(0.05)  # the first run holds the directory from here on
    other = elman([*second, str(run)], tmp)
    out2, err2 = other.communicate(timeout=600)
    out1, err1 = first.communicate(timeout=1200)
    return {"second": " ".join(["elman", *second, "RUN"]), "first_exit": first.returncode,
            "second_exit": other.returncode,
            "second_message": err2.strip().splitlines()[-1] if err2.strip() else "",
            "refused": other.returncode == 1 and "is in use by pid" in err2,
            "first_finished": first.returncode == 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer moments (a smoke run)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/rundir_trial.json"))
    args = ap.parse_args()
    delays = DELAYS[::3] if args.quick else DELAYS
    lines = STAGE_LINES[:2] if args.quick else STAGE_LINES
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rundir-trial-") as tmp:
        base = Path(tmp)
        interrupts = [interrupt(base, float(d)) for d in delays]
        interrupts += [interrupt(base, line) for line in lines]
        kills = [kill_and_rerun(base, line) for line in (lines[:1] if args.quick else
                                                        ["[1/6] train:", "[4/6] verify:"])]
        seconds = [["run", "--data", "sensor:basicmotions", "--epochs", "1"],
                   ["quantize"], ["run", "--from", "report"]]
        concurrency = [concurrent(base, s, i) for i, s in
                       enumerate(seconds[:1] if args.quick else seconds)]
    print(f"{'interrupt at':<22}{'after s':>8}{'exit':>6}  {'traceback':<10}"
          f"{'in Python start-up':<20}stale files")
    for r in interrupts:
        print(f"{str(r['when']):<22}{r['sent_after_s']:>8}{r['exit']:>6}  "
              f"{'yes' if r['traceback'] else 'no':<10}"
              f"{'yes' if r['interpreter_startup'] else 'no':<20}"
              f"{len(r['stale'])} {r['stale'] or ''}")
    for k in kills:
        print(f"kill -9 at {k['killed_at']}: left {k['left_by_kill']}; rerun exit "
              f"{k['rerun_exit']}, stale after rerun {k['stale_after_rerun']}")
    for c in concurrency:
        print(f"concurrent: {c['second']}: second exit {c['second_exit']} "
              f"({'refused' if c['refused'] else 'NOT refused'}), first exit {c['first_exit']}")
    summary = {
        "interrupts_tried": len(interrupts),
        "interrupts_clean": sum(r["clean"] for r in interrupts),
        "interrupts_in_python_startup": sum(r["interpreter_startup"] for r in interrupts),
        "interrupts_with_traceback": sum(r["traceback"] for r in interrupts),
        "elman_tracebacks": sum(r["traceback"] and not r["interpreter_startup"]
                                for r in interrupts),
        "stale_files_left": sum(len(r["stale"]) for r in interrupts),
        "kills_tried": len(kills), "kills_cleaned_by_next_run": sum(k["clean"] for k in kills),
        "concurrent_runs": len(concurrency),
        "second_refused": sum(c["refused"] for c in concurrency),
        "first_finished": sum(c["first_finished"] for c in concurrency),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(summary, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "interrupts": interrupts,
                                    "kills": kills, "concurrent": concurrency},
                                   indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
