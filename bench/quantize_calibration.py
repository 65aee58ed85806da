"""Float vs int8 under calibration choices: input range, pre-activation clamp, calibration size.

For a BasicMotions run and a fortunes run (``--bm`` / ``--text`` run directories;
without them default-size runs are trained first: BasicMotions with the train
defaults (~1 minute), fortunes with ``--minutes 3``), each variant is converted
with the real TF converter and evaluated like ``elman quantize`` does: the int8
model in LiteRT one step at a time on the held-out split, against the float
cell. Variants:

- ``elman``: the defaults (sensor inputs calibrated on the 0.1-99.9 percentile
  range, ADD's output range clamped to +-3.2, up to 4000 calibration pairs);
- ``inputs min/max``: sensor inputs calibrated on their full range;
- ``no clamp``: ADD's output keeps its full calibrated range;
- ``500 pairs``: a smaller calibration set.

Usage: .venv/bin/python bench/quantize_calibration.py [--bm RUN] [--text RUN]
Writes bench/results/quantize_calibration.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from elman.quantize import calibration, evaluate
from elman.quantize.keras_model import read_keras_file
from elman.quantize.reader import read_ir
from elman.quantize.step_model import convert_step_model

from elman.files import dumps_json

RESULTS = Path(__file__).parent / "results" / "quantize_calibration.json"
EVAL_CHARS = 20_000


def _train(data: str, out: Path, **config) -> Path:
    from elman.train.api import TrainConfig, train_run

    print(f"training {data} into {out} ...", file=sys.stderr)
    train_run(data, out, TrainConfig(**config), progress=False)
    return out


def _bm_rows(run: Path) -> list[dict]:
    from elman.data.spec import load_run_data

    data = load_run_data(run)
    fm = read_keras_file(run / "model.keras", "classification").model
    variants = [("elman", 99.9, True, 4000), ("inputs min/max", 100.0, True, 4000),
                ("no clamp", 99.9, False, 4000), ("inputs min/max, no clamp", 100.0, False, 4000),
                ("500 pairs", 99.9, True, 500)]
    rows = []
    for name, pct, clamp, pairs in variants:
        cx, ch = calibration.classification_calibration(fm, data.x_train, pairs, pct)
        model = convert_step_model(fm, cx, ch, task="classification",
                                   clamp_preactivation=clamp)
        ir = read_ir(model)
        r = evaluate.evaluate_classification(fm, ir, model, data.x_test, data.y_test)
        m = r["metrics"]
        rows.append({"task": "BasicMotions", "variant": name, "units": ir.state_bytes,
                     "float": m["float"]["accuracy"], "int8": m["int8"]["accuracy"],
                     "agreement": m["prediction_agreement"],
                     "hidden_mean_abs_error": r["hidden_error"]["mean"],
                     "hidden_max_abs_error": r["hidden_error"]["max"],
                     "x_scale": ir.input_quant.scale, "z_scale": ir.layers[0].add.output.scale})
        print(_format(rows[-1]), file=sys.stderr)
    return rows


def _text_rows(run: Path) -> list[dict]:
    from elman.data.spec import load_run_data

    data = load_run_data(run)
    fm = read_keras_file(run / "model.keras", "language_model").model
    steps = min(EVAL_CHARS, len(data.val_ids) - 1)
    rows = []
    for name, clamp, pairs in [("elman", True, 4000), ("no clamp", False, 4000),
                               ("500 pairs", True, 500)]:
        cx, ch = calibration.text_calibration(fm, data.train_ids, pairs)
        model = convert_step_model(fm, cx, ch, task="language_model", labels=data.vocab,
                                   clamp_preactivation=clamp)
        ir = read_ir(model)
        r = evaluate.evaluate_text(fm, ir, model, data.val_ids, steps)
        m = r["metrics"]
        rows.append({"task": "fortunes", "variant": name, "units": ir.state_bytes,
                     "float": m["float"]["bits_per_char"], "int8": m["int8"]["bits_per_char"],
                     "agreement": m["next_char_agreement"],
                     "hidden_mean_abs_error": r["hidden_error"]["mean"],
                     "hidden_max_abs_error": r["hidden_error"]["max"],
                     "x_scale": ir.input_quant.scale, "z_scale": ir.layers[0].add.output.scale,
                     "drift_first_last": [r["drift"]["first_window_mean_abs_error"],
                                          r["drift"]["last_window_mean_abs_error"]]})
        print(_format(rows[-1]), file=sys.stderr)
    return rows


HEADER = (f"{'task':<13}{'variant':<26}{'units':>6}{'float':>9}{'int8':>9}{'agree':>8}"
          f"{'|dh| mean':>11}{'|dh| max':>10}{'x scale':>10}{'z scale':>10}")


def _format(r: dict) -> str:
    return (f"{r['task']:<13}{r['variant']:<26}{r['units']:>6}{r['float']:>9.4f}{r['int8']:>9.4f}"
            f"{r['agreement']:>8.4f}{r['hidden_mean_abs_error']:>11.5f}"
            f"{r['hidden_max_abs_error']:>10.4f}{r['x_scale']:>10.5f}{r['z_scale']:>10.5f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bm", type=Path, help="a trained BasicMotions run directory")
    parser.add_argument("--text", type=Path, help="a trained fortunes run directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bm = args.bm or _train("sensor:basicmotions", Path(tmp) / "bm")
        text = args.text or _train("text:fortunes", Path(tmp) / "text", minutes=3.0,
                                   diagnostics=False, baseline=False)
        rows = _bm_rows(bm) + _text_rows(text)
    print("metric: accuracy (BasicMotions, 40 test sequences) or bits/char (fortunes, "
          f"{EVAL_CHARS} validation characters, one stream); |dh| in float units")
    print(HEADER)
    for r in rows:
        print(_format(r))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(dumps_json({"rows": rows, "eval_chars": EVAL_CHARS}))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
