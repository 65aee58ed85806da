"""The text recipe search: which recipe reaches the lowest perplexity for its work.

Every recipe trains on the fortunes training text *minus a tuning split carved
from it* (each training quotation whose CRC-32 of ``"tune:" + text`` is 0 mod 10,
about 10%) and is scored on that tuning split after every epoch, with the one
validation-perplexity definition (:mod:`elman.perplexity`: the whole stream as
one sequence, state carried). The reported validation split is never used to
choose. Kneser-Ney orders 5 and 7, fitted on the same training part and scored on
the same tuning split, are printed under the table. Each recipe runs in its own
process (fresh TensorFlow state), one at a time; results accumulate in
``bench/results/lm_recipes.json`` (a recipe already there is skipped unless
``--again``), so the search can be resumed.

    python bench/lm_recipes.py --list                 # the recipes and their options
    python bench/lm_recipes.py                        # run every recipe not yet measured
    python bench/lm_recipes.py --recipe base --recipe drop-head-0.1
    python bench/lm_recipes.py --table                # print the table from the JSON

Work is counted in training characters; CPU seconds (user + system of the
training process) and wall seconds are recorded too, with the load average,
since the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "lm_recipes.json"
KNESER_NEY = Path(__file__).parent / "results" / "lm_recipes_kneser_ney.json"
TUNE_MODULUS = 10

BASE = dict(units=384, embedding=32, lr=3e-3, batch=32, bptt=35, chars=16_000_000)

# name -> TrainConfig options (on top of BASE); the order is the order of the search
RECIPES: dict[str, dict] = {
    "base": {},  # the recipe of the first release, by characters instead of minutes
    "drop-0.1": dict(dropout_embedding=0.1, dropout_head=0.1),
    "bptt-70": dict(bptt=70),
    "lr-5e-3": dict(lr=5e-3),
    "batch-64": dict(batch=64, lr=4e-3),
    "units-512": dict(units=512, chars=9_600_000),  # about the compute of base
    "lr-2e-3": dict(lr=2e-3),
    "emb-64": dict(embedding=64),
    "wd-0.01": dict(weight_decay=0.01),
    "drop-head-0.05": dict(dropout_head=0.05),
    "batch-128": dict(batch=128, lr=5e-3),
    "b64-emb64-28M": dict(batch=64, lr=4e-3, embedding=64, chars=28_000_000),  # the default
    # 256 units cost 0.65x the CPU of 384 per update: more characters in less time
    "u256-b64-emb64-36M": dict(units=256, batch=64, lr=4e-3, embedding=64, chars=36_000_000),
    # batch 128 trains 1.2x the characters per second of batch 64 (94k against 79k on an
    # idle 2-core machine, 384 units): the default's work in less time, if the quality holds
    "b128-emb64-28M-lr5e-3": dict(batch=128, lr=5e-3, embedding=64, chars=27_800_000),
    "b128-emb64-28M-lr7e-3": dict(batch=128, lr=7e-3, embedding=64, chars=27_800_000),
    # a default in ~6 minutes on a slower host (72k characters/s at batch 128): 22M characters
    "b128-emb64-22M": dict(batch=128, lr=5e-3, embedding=64, chars=22_000_000),
    "b128-emb128-22M": dict(batch=128, lr=5e-3, embedding=128, chars=22_000_000),
    "b128-emb128-20.9M": dict(batch=128, lr=5e-3, embedding=128, chars=20_885_760),  # default
    # long-recipe candidates (30 minutes on an idle 2-core machine: 512 units at batch 128
    # train ~68k characters/s): wider, with dropout on the head's input for ~40 passes
    "long-u512-b128-lr3e-3-dh0.1-90M": dict(units=512, batch=128, lr=3e-3, embedding=64,
                                            dropout_head=0.1, chars=90_000_000),
    "long-u512-b128-lr3e-3-dh0.05-90M": dict(units=512, batch=128, lr=3e-3, embedding=64,
                                             dropout_head=0.05, chars=90_000_000),
    # long-recipe candidates (2026-12-01, fourth stop): the long recipe of the third stop
    # (batch 64, 2e-3, embedding 128, 96M: 4.6757 on the validation split, 2.7% below order
    # 5, ~31 minutes) at batch 128, which trains 1.1-1.2x the characters per second; and an
    # embedding of 256 (64 -> 128 was the largest single gain, at both lengths)
    "long-b128-emb128-lr3e-3-dh0.05-100M": dict(batch=128, lr=3e-3, embedding=128,
                                                dropout_head=0.05, chars=100_000_000),
    "long-b128-emb256-lr3e-3-dh0.05-90M": dict(batch=128, lr=3e-3, embedding=256,
                                               dropout_head=0.05, chars=90_000_000),
    # 2026-12-02: weight decay (AdamW), over the default and over the long recipe of the
    # third stop (batch 64, 2e-3, embedding 128, head dropout 0.05, 96M; never on this split)
    "b128-emb128-20.9M-wd0.03": dict(batch=128, lr=5e-3, embedding=128, chars=20_885_760,
                                     weight_decay=0.03),
    "long-b64-emb128-lr2e-3-dh0.05-96M": dict(batch=64, lr=2e-3, embedding=128,
                                              dropout_head=0.05, chars=96_000_000),
    "long-b64-emb128-lr2e-3-dh0.05-96M-wd0.03": dict(batch=64, lr=2e-3, embedding=128,
                                                     dropout_head=0.05, chars=96_000_000,
                                                     weight_decay=0.03),
}


def tuning_data():
    """fortunes' training text split into (train minus tuning, tuning), as TextData."""
    import dataclasses

    import numpy as np
    from elman.data.datasets import load_dataset
    from elman.data.text_corpus import fortunes_split

    full = load_dataset("text:fortunes")
    train_text, _ = fortunes_split()
    pieces = [p + "%\n" for p in train_text.split("%\n") if p]
    tune = [p for p in pieces if zlib.crc32(("tune:" + p).encode("utf-8")) % TUNE_MODULUS == 0]
    rest = [p for p in pieces if zlib.crc32(("tune:" + p).encode("utf-8")) % TUNE_MODULUS != 0]
    index = {c: i for i, c in enumerate(full.vocab)}

    def ids(parts):
        return np.array([index[c] for c in "".join(parts)], dtype=np.int32)

    info = {**full.info, "split": "fortunes training text; tuning: CRC-32('tune:' + quotation) "
            f"mod {TUNE_MODULUS} == 0"}
    return dataclasses.replace(full, source="text:fortunes/tuning", train_ids=ids(rest),
                               val_ids=ids(tune), info=info)


def run_one(name: str, out: Path) -> None:
    """Train one recipe on the tuning split (in this process) and write its row."""
    from elman.train.api import TrainConfig, train_run

    options = {**BASE, **RECIPES[name]}
    data = tuning_data()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        report = train_run(data, Path(tmp) / "run", TrainConfig(**options, baseline=False),
                           progress=True)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    t = report["throughput"]
    row = {
        "recipe": name,
        "options": options,
        "tune_perplexity": report["metrics"]["val_perplexity"],
        "tune_bits_per_char": report["metrics"]["val_bits_per_char"],
        "learning_curve": [
            {k: e[k] for k in ("epoch", "chars", "train_loss", "val_perplexity")}
            for e in report["epochs"] if "val_perplexity" in e
        ],
        "parameters": report["model"]["parameters"],
        "train_chars": t["steps"],
        "updates": t["updates"],
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "chars_per_cpu_second": t["steps"] / cpu,
        "load_average": os.getloadavg()[0],
        "tune_chars": int(len(data.val_ids)),
        "train_split_chars": int(len(data.train_ids)),
    }
    out.write_text(json.dumps(row, indent=2) + "\n")


def kneser_ney() -> dict:
    """Kneser-Ney orders 5 and 7 fitted on the same training part, scored on the tuning split."""
    if KNESER_NEY.exists():
        return json.loads(KNESER_NEY.read_text())
    from elman.train.kneser_ney import KneserNey

    data = tuning_data()
    result = {f"kn{order}": KneserNey(data.train_ids, len(data.vocab), order).evaluate(
        data.val_ids) for order in (5, 7)}
    KNESER_NEY.parent.mkdir(exist_ok=True)
    KNESER_NEY.write_text(json.dumps(result, indent=2) + "\n")
    return result


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def table(results: dict) -> str:
    lines = [f"{'recipe':<26}{'tune ppl':>9}{'bpc':>7}{'Mchars':>8}{'params':>9}"
             f"{'cpu s':>8}{'kchar/cpu-s':>12}  curve (tuning perplexity per epoch)"]
    for name in [n for n in RECIPES if n in results] + [n for n in results if n not in RECIPES]:
        r = results[name]
        curve = " ".join(f"{e['val_perplexity']:.3f}" for e in r["learning_curve"])
        lines.append(f"{name:<26}{r['tune_perplexity']:>9.3f}{r['tune_bits_per_char']:>7.3f}"
                     f"{r['train_chars'] / 1e6:>8.1f}{r['parameters']:>9,}"
                     f"{r['cpu_seconds']:>8.0f}{r['chars_per_cpu_second'] / 1e3:>12.1f}  {curve}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", action="append", help="run only these recipes")
    parser.add_argument("--again", action="store_true", help="rerun recipes already measured")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args.one, args.out)
        return
    if args.list:
        for name, options in RECIPES.items():
            print(f"{name:<26}{ {**BASE, **options} }")
        return
    results = load_results()
    if not args.table:
        names = args.recipe or list(RECIPES)
        unknown = [n for n in names if n not in RECIPES]
        if unknown:
            sys.exit(f"error: unknown recipe(s) {', '.join(unknown)} (see --list)")
        for name in names:
            if name in results and not args.again:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "row.json"
                print(f"recipe {name}: {dict(BASE, **RECIPES[name])}", flush=True)
                subprocess.run([sys.executable, __file__, "--one", name, "--out", str(out)],
                               check=True)
                results = load_results()
                results[name] = json.loads(out.read_text())
            RESULTS.parent.mkdir(exist_ok=True)
            RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
            print(table({name: results[name]}), flush=True)
    print(table(results))
    kn = kneser_ney()
    print(f"Kneser-Ney on the same tuning split: order 5 {kn['kn5']['val_perplexity']:.3f}, "
          f"order 7 {kn['kn7']['val_perplexity']:.3f}")


if __name__ == "__main__":
    main()
