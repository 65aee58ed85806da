"""The float model against the int8 simulator: task metrics and per-step error.

The float model is not expected to agree bit for bit; this module measures how
far the int8 program is from it, on the same held-out data. The float model is
a :class:`~elman.quantize.float_model.FloatElman` (numpy, read from the Keras
file by ``elman.quantize.keras_model.read_keras_file``, which imports Keras
lazily); it returns every layer's state at every step, also for classifiers
whose last recurrent layer returns only the last step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from elman.quantize import task_metrics
from elman.quantize.float_model import FloatElman
from elman.quantize.ir import QuantizedModel
from elman.runtime.outputs import StepOutputs

from elman import perplexity


def float_metrics(model: FloatElman, ir: QuantizedModel, inputs: Any,
                  simulated: StepOutputs, profile: str) -> dict[str, Any]:
    """Task metrics of the float model and of the int8 simulator of ``profile`` on
    ``inputs``, and the per-step hidden-state error between them."""
    if inputs.ids is not None:
        x = model.embed(inputs.ids)
    elif inputs.x_float is not None:
        x = np.asarray(inputs.x_float, dtype=np.float64)
    else:
        raise ValueError("classification inputs need their float values (x_float)")
    run = model.run(x, dtype=np.float64)
    logits_float = run.logits
    h_int8 = ir.state_quant.dequantize(simulated.h)
    real = task_metrics.real_steps(x.shape[0], x.shape[1], inputs.lengths)
    err = np.abs(h_int8 - run.h)[real]  # the padding after a sequence's end is not data
    metrics: dict[str, Any] = {
        "hidden_abs_error_mean": float(err.mean()),
        "hidden_abs_error_max": float(err.max()),
        "hidden_abs_error_mean_lsb": float(err.mean() / ir.state_quant.scale),
    }
    details: dict[str, Any] = {}
    if simulated.y is not None and ir.output_quant is not None:
        logits_int8 = ir.output_quant.dequantize(simulated.y)
        if inputs.labels is not None:
            m_f = task_metrics.classification_metrics(logits_float, inputs.labels,
                                                          inputs.lengths)
            m_q = task_metrics.classification_metrics(logits_int8, inputs.labels,
                                                          inputs.lengths)
            per_step = np.ndim(inputs.labels) == 2
            for key in ("accuracy", "per_step_accuracy"):
                if key in m_f:
                    metrics[f"float_{key}"] = m_f[key]
                    metrics[f"int8_{key}"] = m_q[key]
            if per_step:
                for name, m in (("float", m_f), ("int8", m_q)):
                    delay = m["switch_delay"]
                    details[f"{name}_switch_delay"] = delay
                    if delay["median_steps"] is not None:
                        metrics[f"{name}_switch_delay_median"] = delay["median_steps"]
                        metrics[f"{name}_switch_delay_mean"] = delay["mean_steps"]
                    metrics[f"{name}_switches_missed"] = float(delay["missed"])
            metrics["prediction_agreement"] = task_metrics.agreement(
                logits_float, logits_int8, per_step, inputs.lengths)
        elif inputs.ids is not None and inputs.ids.shape[1] > 1:
            # elman.perplexity's definition when the inputs are the whole validation stream
            target = inputs.ids[:, 1:]
            for name, logits in (("float", logits_float), ("int8", logits_int8)):
                scored = perplexity.score_logits(logits[:, :-1], target)
                metrics[f"{name}_perplexity"] = scored["perplexity"]
                metrics[f"{name}_bits_per_char"] = scored["bits_per_char"]
                metrics[f"{name}_next_token_accuracy"] = float(
                    (logits[:, :-1].argmax(-1) == target).mean())
            metrics["prediction_agreement"] = float(
                (logits_float.argmax(-1) == logits_int8.argmax(-1)).mean())
    out = {"a": "Keras float", "b": f"simulator ({profile})", "profile": profile,
           "metrics": {k: round(v, 6) for k, v in metrics.items()}}
    if details:
        out["details"] = details
    return out
