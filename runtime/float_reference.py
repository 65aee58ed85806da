"""The float Keras model against the int8 simulator: task metrics and per-step error.

The float model is not expected to agree bit for bit; this module measures how
far the int8 program is from it, on the same held-out data. The Keras file is
loaded with TensorFlow (imported here, lazily); the float recurrence itself is
recomputed in float64 numpy from the layer weights, so it returns the hidden
state of every step even for classifiers whose RNN layer returns only the last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from elman.quantize.ir import QuantizedRNN
from elman.runtime.simulator import StepOutputs


def keras_weights(keras_path: Path) -> dict[str, np.ndarray]:
    """``kernel``, ``recurrent_kernel``, ``bias``, ``head_kernel``, ``head_bias`` (and
    ``embedding`` for text models) of a saved elman model."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    model = keras.models.load_model(keras_path, compile=False)
    names = {layer.name for layer in model.layers}
    out: dict[str, np.ndarray] = {}
    kernel, recurrent, bias = model.get_layer("rnn").get_weights()
    out.update(kernel=kernel, recurrent_kernel=recurrent, bias=bias)
    head_kernel, head_bias = model.get_layer("head").get_weights()
    out.update(head_kernel=head_kernel, head_bias=head_bias)
    if "embedding" in names:
        out["embedding"] = model.get_layer("embedding").get_weights()[0]
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def float_steps(weights: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float hidden states (B, T, H) and logits (B, T, O) of every step."""
    batch, steps, _ = x.shape
    units = weights["recurrent_kernel"].shape[0]
    hs = np.empty((batch, steps, units))
    h = np.zeros((batch, units))
    xk = x @ weights["kernel"] + weights["bias"]
    for t in range(steps):
        h = np.tanh(xk[:, t] + h @ weights["recurrent_kernel"])
        hs[:, t] = h
    return hs, hs @ weights["head_kernel"] + weights["head_bias"]


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def float_metrics(weights: dict[str, np.ndarray], ir: QuantizedRNN, inputs: Any,
                  simulated: StepOutputs, profile: str) -> dict[str, Any]:
    """Task metrics of the float model (``keras_weights``) and of the int8 simulator
    of ``profile`` on ``inputs``, and the per-step hidden-state error between them."""
    if inputs.ids is not None:
        x = weights["embedding"][inputs.ids]
    elif inputs.x_float is not None:
        x = np.asarray(inputs.x_float, dtype=np.float64)
    else:
        raise ValueError("classification inputs need their float values (x_float)")
    h_float, logits_float = float_steps(weights, x)
    h_int8 = ir.state_quant.dequantize(simulated.h)
    err = np.abs(h_int8 - h_float)
    metrics: dict[str, Any] = {
        "hidden_abs_error_mean": float(err.mean()),
        "hidden_abs_error_max": float(err.max()),
        "hidden_abs_error_mean_lsb": float(err.mean() / ir.state_quant.scale),
    }
    if simulated.y is not None and ir.output_quant is not None:
        logits_int8 = ir.output_quant.dequantize(simulated.y)
        if inputs.labels is not None:
            pf = logits_float[:, -1].argmax(-1)
            pq = logits_int8[:, -1].argmax(-1)
            metrics.update(float_accuracy=float((pf == inputs.labels).mean()),
                           int8_accuracy=float((pq == inputs.labels).mean()),
                           prediction_agreement=float((pf == pq).mean()))
        elif inputs.ids is not None and inputs.ids.shape[1] > 1:
            target = inputs.ids[:, 1:]
            for name, logits in (("float", logits_float), ("int8", logits_int8)):
                lp = _log_softmax(logits[:, :-1])
                nll = -np.take_along_axis(lp, target[..., None], axis=-1).mean()
                metrics[f"{name}_perplexity"] = float(np.exp(nll))
                metrics[f"{name}_bits_per_char"] = float(nll / np.log(2))
                metrics[f"{name}_next_token_accuracy"] = float(
                    (logits[:, :-1].argmax(-1) == target).mean())
            metrics["prediction_agreement"] = float(
                (logits_float.argmax(-1) == logits_int8.argmax(-1)).mean())
    return {"a": "Keras float", "b": f"simulator ({profile})", "profile": profile,
            "metrics": {k: round(v, 6) for k, v in metrics.items()}}

