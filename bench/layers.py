"""Stacked layers end to end: ``elman run --layers N`` on BasicMotions and its stream task.

For each data set and layer count, one ``elman run`` with the defaults otherwise
(training, quantization, code generation, verification on the whole held-out set):
float / int8 / C task metric of both profiles (accuracy at the last step for
BasicMotions, per-step accuracy and the median switch delay for the stream task),
whether every verify pair (LiteRT, TFLite Micro, numpy engine, host C, emulated
Cortex-M0+ and M4, both profiles) is bit-exact, and training time (wall and CPU).
The issue's bar: with two layers, int8 within 1 point of float, every pair bit-exact.
Prints a table and writes ``bench/results/layers.json``.

Run it alone (``nice -n 10``): training is CPU-bound.

    python bench/layers.py                       # --layers 1,2 on both data sets
    python bench/layers.py --layers 2 --datasets sensor:basicmotions-stream
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = Path(__file__).resolve().parent / "results"
DATASETS = ("sensor:basicmotions", "sensor:basicmotions-stream")
WITHIN = 0.01  # int8 vs float, in task-metric units (1 point)


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def one_run(spec: str, layers: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="elman-bench-layers-") as tmp:
        run = Path(tmp) / "run"
        wall, cpu = time.perf_counter(), _cpu_seconds()
        done = subprocess.run([sys.executable, "-m", "elman.cli", "run", "--data", spec,
                               "--layers", str(layers), "--seed", str(seed), str(run),
                               "--quiet"], capture_output=True, text=True)
        wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
        if done.returncode != 0:
            raise SystemExit(f"elman run --data {spec} --layers {layers} failed:\n"
                             f"{done.stdout}{done.stderr}")
        train = json.loads((run / "train_report.json").read_text())
        verify = json.loads((run / "verify_report.json").read_text())
    per_step = "float_per_step_accuracy" in verify["float_vs_int8"][0]["metrics"]
    metric = "per_step_accuracy" if per_step else "accuracy"
    exact = bool(verify["ok"]) and all(p["exact"] for p in verify["pairs"])
    row = {"data": spec, "layers": layers, "seed": seed, "units": train["config"]["units"],
           "metric": metric, "wall_s": wall, "cpu_s": cpu,
           "train_s": train["throughput"]["total_seconds"], "all_bit_exact": exact,
           "pairs": len(verify["pairs"]),
           "pair_names": sorted({f"{p['profile']}: {p['a']} vs {p['b']}"
                                 for p in verify["pairs"]}),
           "verify_data": verify["data"]["description"], "profiles": {}}
    for f in verify["float_vs_int8"]:
        m = f["metrics"]
        entry = {"float": m[f"float_{metric}"], "int8": m[f"int8_{metric}"],
                 # the C is bit-exact with the simulator of its profile (all_bit_exact)
                 "C": m[f"int8_{metric}"] if exact else None}
        if per_step:
            entry["float_switch_delay_median"] = m.get("float_switch_delay_median")
            entry["int8_switch_delay_median"] = m.get("int8_switch_delay_median")
        entry["within_1_point"] = abs(entry["float"] - entry["int8"]) <= WITHIN + 1e-12
        row["profiles"][f["profile"]] = entry
    return row


def table(rows: list[dict]) -> None:
    print(f"{'data':28s} {'L':>1s} {'metric':>17s} {'float':>6s} {'int8 tflm':>9s} "
          f"{'C tflm':>6s} {'int8 tflite':>11s} {'C tflite':>8s} {'delay f/q':>9s} "
          f"{'pairs':>8s} {'train s':>7s} {'CPU s':>6s}")
    for r in rows:
        p = r["profiles"]
        delay = ""
        if r["metric"] == "per_step_accuracy":
            t = p["tflm"]
            delay = f"{t['float_switch_delay_median']}/{t['int8_switch_delay_median']}"
        c = {k: (f"{p[k]['C']:.3f}" if p[k]["C"] is not None else "-") for k in p}
        print(f"{r['data']:28s} {r['layers']:1d} {r['metric']:>17s} {p['tflm']['float']:6.3f} "
              f"{p['tflm']['int8']:9.3f} {c['tflm']:>6s} {p['tflite']['int8']:11.3f} "
              f"{c['tflite']:>8s} {delay:>9s} "
              f"{('all ' if r['all_bit_exact'] else 'NOT ') + str(r['pairs']):>8s} "
              f"{r['train_s']:7.0f} {r['cpu_s']:6.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", default="1,2", help="comma-separated layer counts (1-3)")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    for spec in args.datasets.split(","):
        for layers in (int(n) for n in args.layers.split(",")):
            rows.append(one_run(spec, layers, args.seed))
            print(f"done: {spec} --layers {layers}", flush=True)
    print()
    table(rows)
    out = RESULTS / "layers.json"
    out.write_text(json.dumps({"rows": rows, "within": WITHIN}, indent=2, sort_keys=True) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
