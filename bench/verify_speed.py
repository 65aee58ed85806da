"""How long `elman verify` takes on > 1,000 test sequences, and where the time goes.

ItalyPowerDemand (UCR, in the aeon wheel): 1,029 test sequences x 24 steps, one
channel, two classes. The model is trained (``--epochs``, default 20) and quantized
into a temporary run directory unless ``--run DIR`` names one; then ``elman verify``
runs in a child process, timed (wall and CPU of the child, user + sys), and the
seconds of every pair come from its ``verify_report.json``.
Prints a table and writes ``bench/results/verify_speed.json``.

    python bench/verify_speed.py               # issue 18: < 30 s on an idle 2-core machine
    python bench/verify_speed.py --run runs/x  # any trained and quantized run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _elman(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "elman.cli", *args], capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"elman {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def _prepare(run: Path, epochs: int) -> None:
    from elman.data.ts_datasets import archive_dir

    data = f"ts:{archive_dir('ItalyPowerDemand') / 'ItalyPowerDemand_TRAIN.ts'}"
    _elman("train", "--data", data, "--epochs", str(epochs), "--no-progress", str(run))
    _elman("quantize", str(run))


def time_verify(run: Path) -> dict:
    cpu, wall = _children_cpu(), time.perf_counter()
    _elman("verify", str(run), "--no-progress")
    wall, cpu = time.perf_counter() - wall, _children_cpu() - cpu
    report = json.loads((run / "verify_report.json").read_text())
    pairs = [{"pair": f"{p['a']} vs {p['b']}", "seconds": p["seconds"], "data": p["data"],
              "compared": p["compared"], "exact": p["ok"]} for p in report["pairs"]]
    return {"data": report["data"]["description"], "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "pairs_s": round(sum(p["seconds"] for p in pairs), 2),
            "all_bit_exact": bool(report["ok"]), "pairs": pairs,
            "load_average": os.getloadavg()[0], "cpus": os.cpu_count()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, default=None, help="a trained, quantized run directory")
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="elman-verify-speed-") as tmp:
        run = args.run
        if run is None:
            run = Path(tmp) / "italy"
            _prepare(run, args.epochs)
        result = time_verify(run)
    width = max(len(p["pair"]) for p in result["pairs"])
    print(f"elman verify on the {result['data']}")
    print(f"{'pair':{width}s}  {'seconds':>8s}  compared")
    for p in result["pairs"]:
        note = "" if p["data"] == result["data"] else f"  ({p['data'].split(' of ')[0]})"
        print(f"{p['pair']:{width}s}  {p['seconds']:8.1f}  {p['compared']:,}{note}")
    print(f"{'sum of the pairs':{width}s}  {result['pairs_s']:8.1f}")
    print(f"elman verify: {result['wall_s']:.1f} s wall, {result['cpu_s']:.1f} s CPU "
          f"(user + sys), load average {result['load_average']:.1f} on {result['cpus']} CPUs; "
          f"bit-exact: {'yes' if result['all_bit_exact'] else 'NO'}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "verify_speed.json"
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
