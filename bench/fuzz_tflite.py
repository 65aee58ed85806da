"""The corrupted-model trial of issue 12: damaged copies of a real quantized model.

Bit flips, zeroed runs, random bytes and truncations at seeded positions, plus
other op graphs (edits of the real model's graph, with the stale checksum and,
for those that leave no valid step model, resealed), each written as a run's
``model_int8.tflite`` and put through ``elman inspect``, ``elman codegen`` and
``elman verify --limit 2`` (the real CLI, in process). Prints, per kind of
damage: tried / refused cleanly / accepted with the original IR (bytes no reader
uses) / silently accepted / tracebacks. The last two must be 0.

Usage: .venv/bin/python bench/fuzz_tflite.py [--run RUN_DIR] [--variants 211] [--seed 0]
Without ``--run`` it trains and quantizes a 16-unit BasicMotions model first
(about a minute). Writes bench/results/fuzz_tflite.json; exit status 1 when
anything was silently accepted or raised a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tflite_fuzz import OUTCOMES, byte_variants, graph_variants, run_trial  # noqa: E402

from elman import rundir  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "fuzz_tflite.json"


def _train(run: Path) -> None:
    from elman.quantize.api import quantize_run
    from elman.train.api import TrainConfig, train_run

    train_run("sensor:basicmotions", run, TrainConfig(units=16, epochs=60, lr=1e-2, seed=0,
                                                      diagnostics=False), progress=False)
    quantize_run(run, progress=False)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a quantized run directory (default: train one)")
    parser.add_argument("--variants", type=int, default=211, help="byte-level variants")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="elman-fuzz-") as tmp:
        run = args.run
        if run is None:
            run = Path(tmp) / "bm"
            print("training and quantizing a 16-unit BasicMotions model...", flush=True)
            _train(run)
        model = (run / rundir.MODEL_TFLITE).read_bytes()
        variants = byte_variants(model, args.variants, seed=args.seed) + graph_variants(model)
        print(f"{len(variants)} variants of {run / rundir.MODEL_TFLITE} ({len(model):,} bytes) "
              "through inspect, codegen, verify...", flush=True)
        wall, cpu = time.perf_counter(), _cpu()
        work = Path(tmp) / "work"
        work.mkdir()
        result = run_trial(run, variants, work)
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    print()
    print(result.table())
    print()
    counts = result.outcomes
    print(f"tried {result.tried}, refused cleanly {counts['refused cleanly']}, accepted with the "
          f"original IR {counts['accepted, same model']}, silently accepted "
          f"{counts['silently accepted']}, tracebacks {counts['traceback']} "
          f"({wall:.0f} s wall, {cpu:.0f} s CPU)")
    for variant, stage, what in result.bad:
        print(f"  {what}: {variant.kind} {variant.label} in {stage}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "model": {"file": str(run / rundir.MODEL_TFLITE), "bytes": len(model)},
        "seed": args.seed,
        "tried": result.tried,
        "outcomes": {o: counts[o] for o in OUTCOMES},
        "by_kind": {k: {o: c[o] for o in OUTCOMES} for k, c in sorted(result.by_kind.items())},
        "bad": [{"kind": v.kind, "label": v.label, "stage": s, "outcome": w}
                for v, s, w in result.bad],
        "seconds": {"wall": round(wall, 1), "cpu": round(cpu, 1)},
        "load_average": os.getloadavg()[0],
    }, indent=2, sort_keys=True) + "\n")
    return 1 if counts["silently accepted"] or counts["traceback"] else 0


if __name__ == "__main__":
    sys.exit(main())
