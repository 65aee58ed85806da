"""Training throughput: elman's truncated-BPTT loop against a plain Keras ``model.fit``.

Same model (the default text model of ``elman train``, vocabulary of fortunes),
same characters (the default number of parallel streams of real fortunes text,
default window length), same optimizer (Adam). Rows:

- ``model.fit``: the windows as independent samples (no state carry, no
  clipping, no norm recording): what Keras does on its own.
- ``elman, no diagnostics``: elman's loop with state carry, ``--clip 0`` and
  no gradient-norm recording.
- ``elman (default)``: state carry, global-norm clipping at 1.0 and the pre-clip
  norm of every update recorded; the windows go through the unrolled recurrence
  with its hand-written backward pass (``elman.train.loop.unrolled_tanh``).
- ``elman, layer loop``: the same, through the SimpleRNN layer's own loop and
  automatic differentiation (what the loop did before 2026-12-01, fifth stop).

The diagnostics overhead is ``1 - default / no-diagnostics``. The end-of-run
diagnostics (the gradient-vs-distance curve) are timed separately. Each row is
the median of several interleaved repetitions (the machine may be shared).
Writes bench/results/train_throughput.json.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

WINDOWS = 60
REPEATS = 7


def main() -> dict:
    import keras
    import numpy as np
    from elman.data.datasets import load_dataset
    from elman.quantize.keras_model import read_keras
    from elman.train.config import TASK_DEFAULTS
    from elman.train.diagnostics import text_curve
    from elman.train.loop import Trainer, stream_windows
    from elman.train.model import build_model

    d = TASK_DEFAULTS["language_model"]
    BATCH, BPTT, UNITS, EMBEDDING = d["batch"], d["bptt"], d["units"], d["embedding"]
    data = load_dataset("text:fortunes", max_chars=(WINDOWS + 1) * BATCH * BPTT + 1)
    vocab = data.vocab_size
    windows = list(stream_windows(data.train_ids, BATCH, BPTT))[:WINDOWS]
    chars = sum(x.size for x, _ in windows)
    x_all = np.concatenate([x for x, _ in windows])
    y_all = np.concatenate([y for _, y in windows])

    def fresh(seed=0):
        keras.utils.set_random_seed(seed)
        return build_model(
            "language_model", units=UNITS, input_dim=vocab, output_dim=vocab, embedding=EMBEDDING
        )

    def run_elman(clip: float, record: bool, window: int | None = BPTT) -> float:
        trainer = Trainer(fresh(), "language_model", lr=2e-3, clip=clip, record_norms=record,
                          window=window)
        x, y = windows[0]
        trainer.train_step(x, y, trainer.zero_state(BATCH))  # trace
        h = trainer.zero_state(BATCH)
        norms = []
        start = time.perf_counter()
        for x, y in windows:
            loss, norm, h = trainer.train_step(x, y, h)
            norms.append(norm)
            float(loss)
        [float(n) for n in norms]
        return chars / (time.perf_counter() - start)

    def run_fit() -> float:
        model = fresh()
        model.compile(
            optimizer=keras.optimizers.Adam(2e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.fit(x_all[:BATCH], y_all[:BATCH], batch_size=BATCH, epochs=1, verbose=0)  # trace
        start = time.perf_counter()
        model.fit(x_all, y_all, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
        return chars / (time.perf_counter() - start)

    rows = {"model.fit": [], "elman, layer loop": [], "elman, no diagnostics": [],
            "elman (default)": []}
    for _ in range(REPEATS):
        rows["model.fit"].append(run_fit())
        rows["elman, layer loop"].append(run_elman(1.0, True, None))
        rows["elman, no diagnostics"].append(run_elman(0.0, False))
        rows["elman (default)"].append(run_elman(1.0, True))
    median = {name: statistics.median(v) for name, v in rows.items()}
    best = {name: max(v) for name, v in rows.items()}
    overhead = 1.0 - best["elman (default)"] / best["elman, no diagnostics"]

    trainer = Trainer(fresh(), "language_model", lr=2e-3, clip=1.0)
    start = time.perf_counter()
    text_curve(read_keras(trainer.model).model, data.val_ids)
    curve_seconds = time.perf_counter() - start

    result = {
        "setup": {
            "data": "text:fortunes",
            "windows": WINDOWS,
            "batch": BATCH,
            "bptt": BPTT,
            "units": UNITS,
            "embedding": EMBEDDING,
            "vocab": vocab,
            "characters_per_repeat": chars,
            "repeats": REPEATS,
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg()[0],
        },
        "characters_per_second": best,
        "characters_per_second_median": median,
        "all_repeats": rows,
        "diagnostics_overhead": overhead,
        "grad_vs_distance_seconds": curve_seconds,
        "grad_vs_distance_fraction_of_4_minute_run": curve_seconds / 240.0,
    }
    print(f"{'loop':<24}{'chars/s (best)':>16}{'(median)':>10}{'relative':>10}")
    for name, value in best.items():
        print(f"{name:<24}{value:>16,.0f}{median[name]:>10,.0f}{value / best['model.fit']:>10.2f}")
    print(f"diagnostics overhead (default vs no diagnostics): {overhead:+.1%}")
    print(f"gradient-vs-distance curve at the end of a run: {curve_seconds:.2f} s")
    out = Path(__file__).parent / "results" / "train_throughput.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


if __name__ == "__main__":
    main()
