"""Time the text recipe as a user runs it, and check that it is reproducible.

    python bench/text_default.py                  # `elman train --data text:fortunes` twice
    python bench/text_default.py --budget long    # the long recipe (once unless --twice)
    python bench/text_default.py --pipeline       # also `elman run --from quantize` on it

Each run is the real command line in a fresh temporary run directory. Printed and
written to ``bench/results/text_<budget>.json``: wall seconds, CPU seconds (user +
system of the command), load average before and after (the acceptance figure is
the wall time on an idle 2-core machine), the validation perplexity against
Kneser-Ney orders 5 and 7 on the same split, and whether the two runs agree to
3 decimals (and bit for bit in the saved weights).
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

RESULTS = Path(__file__).parent / "results"
ELMAN = Path(sys.executable).parent / "elman"


def timed(args: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"command": " ".join(args[1:]), "wall_seconds": wall, "cpu_seconds": cpu,
            "load_before": load, "load_after": os.getloadavg()[0], "output": done.stdout}


def weights(run: Path) -> list:
    import keras

    return [w.numpy() for w in keras.saving.load_model(run / "model.keras").weights]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", default="default", choices=("default", "long"))
    parser.add_argument("--twice", action="store_true", help="run the long recipe twice too")
    parser.add_argument("--pipeline", action="store_true",
                        help="then quantize, codegen, verify, mcu and report the first run")
    args = parser.parse_args()
    twice = args.budget == "default" or args.twice
    import numpy as np

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(2 if twice else 1):
            run = Path(tmp) / f"run{i}"
            command = [str(ELMAN), "train", "--data", "text:fortunes", "--no-progress"]
            if args.budget != "default":
                command += ["--budget", args.budget]
            row = timed([*command, str(run)])
            report = json.loads((run / "train_report.json").read_text())
            row.update(
                validation_perplexity=report["metrics"]["val_perplexity"],
                validation_bits_per_char=report["metrics"]["val_bits_per_char"],
                kneser_ney={k: v["val_perplexity"] for k, v in report["baseline"].items()},
                train_chars=report["throughput"]["steps"],
                train_seconds=report["throughput"]["train_seconds"],
                learning_curve=[[e["chars"], e["val_perplexity"]] for e in report["epochs"]],
            )
            runs.append(row)
            print(f"run {i + 1}: {row['wall_seconds']:.0f} s wall, {row['cpu_seconds']:.0f} s "
                  f"CPU (load {row['load_before']:.1f}), validation perplexity "
                  f"{row['validation_perplexity']:.4f}; Kneser-Ney 5 "
                  f"{row['kneser_ney']['kn5']:.4f}, 7 {row['kneser_ney']['kn7']:.4f}",
                  flush=True)
        result = {"budget": args.budget, "runs": runs, "cpus": os.cpu_count()}
        if twice:
            a, b = (r["validation_perplexity"] for r in runs)
            same = all(np.array_equal(x, y) for x, y in
                       zip(weights(Path(tmp) / "run0"), weights(Path(tmp) / "run1"),
                           strict=True))
            result.update(same_to_3_decimals=f"{a:.3f}" == f"{b:.3f}", same_weights=same)
            print(f"reproducible: perplexity {a:.6f} vs {b:.6f}; weights bit-identical: {same}")
        if args.pipeline:
            row = timed([str(ELMAN), "run", "--from", "quantize", str(Path(tmp) / "run0")])
            result["pipeline_after_train"] = row
            print(f"elman run --from quantize: {row['wall_seconds']:.0f} s wall, "
                  f"{row['cpu_seconds']:.0f} s CPU\n{row['output']}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"text_{args.budget}.json"
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
