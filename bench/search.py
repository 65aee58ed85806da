"""The acceptance run of `elman search` (issue 15), timed, and its results checked.

    .venv/bin/python bench/search.py [--trials 12] [--jobs 2] [--out runs/search-bench]

runs ``elman search --data sensor:basicmotions --cpu cortex-m0plus --flash 12K --ram 1K
--trials 12 --jobs 2 OUT`` (a fresh OUT), records wall-clock and CPU time (user+sys
of the search and all its processes) and the machine's load average, then checks:
every trained trial's flash, RAM, instructions and cycles equal a fresh ``elman mcu``
of its run directory, and the best trial fits the budget. Prints a table and writes
``bench/results/search.json``. The target: under 10 minutes wall clock on an idle 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "search.json"
BUDGET = {"flash": 12 * 1024, "ram": 1024}


def run_search(out: Path, trials: int, jobs: int) -> dict:
    cmd = [sys.executable, "-m", "elman.cli", "search", "--data", "sensor:basicmotions",
           "--cpu", "cortex-m0plus", "--flash", "12K", "--ram", "1K", "--trials", str(trials),
           "--jobs", str(jobs), str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_after = os.getloadavg()
    if proc.returncode != 0:
        raise SystemExit(f"elman search failed:\n{proc.stderr[-4000:]}")
    print(proc.stdout)
    return {"command": " ".join(cmd[2:]), "wall_s": wall,
            "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "load_average_1_5_15_before": load_before, "load_average_1_5_15_after": load_after,
            "cores": os.cpu_count()}


def check(out: Path) -> dict:
    """Re-measure every trained trial with `elman mcu` and compare; check the best."""
    from elman.firmware_codegen.arm.api import mcu_run

    report = json.loads((out / "search_report.json").read_text())
    mismatches = []
    measured = [t for t in report["trials"] if t["footprint"] == "measured"]
    for t in measured:
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "run"
            shutil.copytree(t["run_dir"], run)
            build = mcu_run(run, cpus=("cortex-m0plus",), opts=("O2",),
                            profiles=(t["params"]["profile"],), progress=False)["builds"][0]
        keys = ("flash", "ram", "instructions_per_step", "instructions_per_step_max",
                "cycles_per_step_max")
        if any(t[k] != build[k] for k in keys):
            mismatches.append({"trial": t["number"], "search": {k: t[k] for k in keys},
                               "mcu": {k: build[k] for k in keys}})
    best = report["best"]
    fits = best is not None and best["flash"] <= BUDGET["flash"] and best["ram"] <= BUDGET["ram"]
    return {"trials": len(report["trials"]), "trained": report["trained"],
            "counts": report["counts"], "measured_trials_checked": len(measured),
            "mcu_mismatches": mismatches, "best_fits": fits,
            "best": None if best is None else {k: best[k] for k in (
                "number", "params", "metric", "flash", "ram", "instructions_per_step_max",
                "cycles_per_step_max")},
            "states_trained": sorted({t["params"].get("state") for t in report["trials"]
                                      if t["state"] in ("complete", "pruned")}),
            "bounds_held": all(t.get("bound_held", True) for t in measured)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/search-bench"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    timing = run_search(args.out, args.trials, args.jobs)
    checked = check(args.out)
    result = {**timing, **checked}
    print(f"{'trials':>6} {'trained':>7} {'wall':>8} {'CPU':>8} {'load':>5} {'mcu equal':>9} "
          f"{'best fits':>9} {'best metric':>11}")
    best = checked["best"] or {}
    print(f"{checked['trials']:>6} {checked['trained']:>7} {timing['wall_s']:>7.0f}s "
          f"{timing['cpu_s']:>7.0f}s {timing['load_average_1_5_15_after'][2]:>5.1f} "
          f"{'yes' if not checked['mcu_mismatches'] else 'NO':>9} "
          f"{'yes' if checked['best_fits'] else 'NO':>9} {best.get('metric', float('nan')):>11.3f}")
    print(f"counts {checked['counts']}; best {best}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    ok = not checked["mcu_mismatches"] and checked["best_fits"] and checked["bounds_held"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
