"""What every peer is measured on and compared with: the run directory's model and data.

- the int8 step model (``model_int8.tflite``) and its IR, for TFLM and elman;
- the held-out test sequences of the run's own data (normalized as the model sees
  them; int8 with the model's input quantization);
- the float Keras model's weights (the recurrent layer's kernel, recurrent kernel
  and bias; the head's kernel and bias, as elman's reader finds them), handed to the
  keras2c and NNoM converters, which rebuild the same network in their own TensorFlow;
- the float reference: the Keras model's own outputs on the test sequences, and the
  per-step hidden state and head output of elman's float model
  (``elman.quantize.float_model``, checked against Keras before use).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RunModel:
    run_dir: Path
    ir: Any  # elman's QuantizedModel
    tflite: bytes
    x: np.ndarray  # float32 (N, T, D): test sequences, normalized
    labels: np.ndarray  # int (N,)
    x_q: np.ndarray  # int8 (N, T, D)
    x_calibration: np.ndarray  # float32: the training split (NNoM calibrates on it)
    weights: dict[str, np.ndarray]  # wx (D, U), wh (U, U), b (U,), wy (U, O), by (O,)
    float_h: np.ndarray  # float64 (N, T, U)
    float_y: np.ndarray  # float64 (N, T, O): the head on every step
    keras_y: np.ndarray  # float32 (N, O): the saved Keras model's output
    data_source: str

    @property
    def units(self) -> int:
        return int(self.weights["wh"].shape[0])

    @property
    def steps(self) -> int:
        return int(self.x.shape[1])

    def first(self, n: int) -> RunModel:
        """The same model on its first ``n`` test sequences."""
        return dataclasses.replace(self, x=self.x[:n], labels=self.labels[:n],
                                   x_q=self.x_q[:n], float_h=self.float_h[:n],
                                   float_y=self.float_y[:n], keras_y=self.keras_y[:n])

    def describe(self) -> str:
        n, t = self.x.shape[:2]
        return f"{n} test sequences x {t} steps of {self.data_source}"


def load(run_dir: Path | str, sequences: int | None) -> RunModel:
    """Everything the peers are measured on; ``sequences`` limits the test sequences.
    The float weights come from elman's own reader of the Keras model (by structure);
    the peers rebuild one SimpleRNN and a Dense head on the last step, so other shapes
    are refused."""
    from elman.data.spec import load_run_data
    from elman.quantize.keras_model import load_keras_model, read_keras
    from elman.quantize.reader import read_ir

    run_dir = Path(run_dir)
    tflite_path = run_dir / "model_int8.tflite"
    keras_path = run_dir / "model.keras"
    for p in (tflite_path, keras_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} is missing: run `elman run` (train and quantize) "
                                    "into that directory first")
    ir = read_ir(tflite_path)
    keras_model = load_keras_model(keras_path)
    fm = read_keras(keras_model, what=str(keras_path))
    f = fm.model
    shape_problems = [why for bad, why in (
        (fm.task != "classification", "is not a classifier"),
        (f.depth != 1, f"has {f.depth} recurrent layers"),
        (f.head_kernel is None, "has no head"),
        (f.head_steps != "last", "answers at every step"),
        (f.mask_value is not None, "masks its input"),
        (fm.has_normalization, "normalizes inside the model")) if bad]
    if shape_problems:
        raise ValueError(f"{keras_path} {', '.join(shape_problems)}: the peers bench rebuilds "
                         "one SimpleRNN with a Dense head on the last step")
    data = load_run_data(run_dir)
    if not data.equal_length:
        raise ValueError(f"{run_dir}: the peers bench needs sequences of one length (NNoM "
                         "and keras2c's sequence API take a fixed T); this data has several")
    x = np.asarray(data.x_test if sequences is None else data.x_test[:sequences], np.float32)
    labels = np.asarray(data.y_test[: len(x)])
    layer = f.layers[0]
    w = {"wx": layer.kernel, "wh": layer.recurrent_kernel, "b": layer.bias,
         "wy": f.head_kernel, "by": f.head_bias}
    keras_y = np.asarray(keras_model.predict(x, verbose=0), np.float32)
    run = f.run(x, dtype=np.float64)
    gap = float(np.max(np.abs(run.logits[:, -1] - keras_y)))
    if gap > 1e-3:
        raise ValueError(f"elman's float model differs from {keras_path} by {gap:g}")
    return RunModel(run_dir=run_dir, ir=ir, tflite=tflite_path.read_bytes(), x=x,
                    labels=labels, x_q=ir.input_quant.quantize(x),
                    x_calibration=np.asarray(data.x_train, np.float32), weights=w,
                    float_h=run.h, float_y=run.logits, keras_y=keras_y,
                    data_source=data.source)


def int8_agreement(name: str, got: np.ndarray, want: np.ndarray) -> dict[str, Any]:
    """Bit-exactness of int8 outputs, every step of every sequence."""
    got, want = np.asarray(got, np.int32), np.asarray(want, np.int32)
    diff = np.abs(got - want)
    bad = np.argwhere(diff > 0)
    out: dict[str, Any] = {"against": name, "values": int(diff.size),
                           "mismatches": int(len(bad)), "max_abs_diff_lsb": int(diff.max())}
    if len(bad):
        i = tuple(int(v) for v in bad[0])
        out["first_mismatch"] = {"index": i, "got": int(got[i]), "want": int(want[i])}
    return out


def float_agreement(y: np.ndarray, model: RunModel, per_step: bool = False) -> dict[str, Any]:
    """Error of float (or dequantized) outputs against the Keras float model; ``per_step``:
    ``y`` is (N, T, O), compared with the float head on every step, else (N, O) at the end."""
    want = model.float_y if per_step else model.keras_y
    err = np.abs(np.asarray(y, np.float64) - want)
    last = y[:, -1] if per_step else y
    return {"against": "Keras float model" + (" (every step)" if per_step else " (last step)"),
            "max_abs_error": float(err.max()), "mean_abs_error": float(err.mean()),
            "output_range": float(np.ptp(model.keras_y)),
            "argmax_agrees": float(np.mean(np.argmax(last, -1) == np.argmax(model.keras_y, -1))),
            "accuracy": float(np.mean(np.argmax(last, -1) == model.labels))}
