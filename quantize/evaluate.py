"""Float vs int8 on the held-out split, the int8 model run in LiteRT one step at a time.

The float reference is the Keras model in float32 numpy
(:class:`~elman.quantize.float_model.FloatElman`: the same weights, the same
recurrence); the int8 side is the converted ``.tflite`` in
LiteRT's reference kernels (``elman.runtime.interpreters.run_litert``), each
step's int8 ``h_t`` fed back as ``h_(t-1)``. Hidden-state errors are in float
units (the state dequantized with its scale: 1/128, or 1/32768 for the int16 state; the
report's keys say "int8" for either width).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from elman.quantize import task_metrics
from elman.quantize.float_model import FloatElman
from elman.quantize.ir import QuantizedModel

from elman import perplexity

DRIFT_WINDOW = 1000
FIRST_STEPS = 100
LONG_STREAM = 10_000  # drift is only meaningful over thousands of steps
ACCURACY_TOLERANCE = 0.01  # int8 accuracy within 1 point of float
BPC_TOLERANCE = 0.03  # int8 bits per character within 0.03 of float

Progress = Callable[[int], None] | None


def _run_litert(model: bytes, ir: QuantizedModel, x_q: np.ndarray, progress: Progress):
    from elman.runtime.interpreters import run_litert

    return run_litert(model, ir, x_q, progress)


def hidden_error_unit(ir: QuantizedModel) -> str:
    """What the hidden-state errors are measured in, for the state width of ``ir``."""
    scale = ir.state_quant.scale
    return (f"float units (int{ir.state_bits} state, scale 1/{round(1 / scale)} = {scale:g} "
            "per LSB)")


def _hidden_error(ir: QuantizedModel, h_q: np.ndarray, h_float: np.ndarray) -> np.ndarray:
    """|dequantized int8 state - float state|, (B, T, H)."""
    return np.abs(ir.state_quant.dequantize(h_q) - h_float.astype(np.float64))


def _by_step(err: np.ndarray, real: np.ndarray) -> dict:
    """Mean and max of (B, T, H) errors per step, over the sequences still running."""
    masked = np.where(real[..., None], err, np.nan)
    return {"mean": np.nanmean(masked, axis=(0, 2)).tolist(),
            "max": np.nanmax(masked, axis=(0, 2)).tolist()}


def _by_sequence(err: np.ndarray, real: np.ndarray) -> dict:
    """Mean of (B, T, H) errors per sequence, over its real steps (verify's expectation)."""
    masked = np.where(real[..., None], err, np.nan)
    return {"mean": np.nanmean(masked, axis=(1, 2)).tolist()}


def evaluate_classification(model: FloatElman, ir: QuantizedModel, tflite: bytes,
                            x_test: np.ndarray, y_test: np.ndarray,
                            progress: Progress = None, lengths: np.ndarray | None = None
                            ) -> dict:
    """Float vs int8 on the test split: accuracy at the last step (labels (N,)), or per-step
    accuracy and switch delay (labels (N, T), a streaming classifier). ``lengths``: each
    sequence's true length (default: all steps); its answer is the output at its last real
    step, and the hidden error covers real steps only."""
    if lengths is not None:
        x_test = x_test[:, : int(np.max(lengths))]
        if np.ndim(y_test) == 2:
            y_test = y_test[:, : x_test.shape[1]]
    x_q = ir.input_quant.quantize(x_test)
    out = _run_litert(tflite, ir, x_q, progress)
    flt = model.run(x_test)
    int8_logits = ir.output_quant.dequantize(out.y)
    per_step = np.ndim(y_test) == 2
    m_f = task_metrics.classification_metrics(flt.logits, y_test, lengths)
    m_q = task_metrics.classification_metrics(int8_logits, y_test, lengths)
    name, acc_f = task_metrics.headline(m_f)
    _, acc_q = task_metrics.headline(m_q)
    real = task_metrics.real_steps(x_test.shape[0], x_test.shape[1], lengths)  # (N, T)
    answers = real if per_step else task_metrics.last_steps(real)
    err = _hidden_error(ir, out.h, flt.h)[real]  # padding after each end is not data
    return {
        "split": "test",
        "sequences": int(len(y_test)),
        "steps_per_sequence": int(x_test.shape[1]),
        "answers": "every step" if per_step else "last step",
        "metrics": {
            "float": m_f,
            "int8": m_q,
            "accuracy_drop": acc_f - acc_q,
            "prediction_agreement": task_metrics.agreement(flt.logits, int8_logits, per_step,
                                                           lengths),
            "logit_mean_abs_error": float(np.abs(int8_logits[answers]
                                                 - flt.logits[answers]).mean()),
        },
        "hidden_error": {
            "unit": hidden_error_unit(ir),
            "mean": float(err.mean()),
            "max": float(err.max()),
            "by_step": _by_step(_hidden_error(ir, out.h, flt.h), real),
            "by_sequence": _by_sequence(_hidden_error(ir, out.h, flt.h), real),  # for verify
        },
        "acceptance": {
            "criterion": f"int8 {name} within {ACCURACY_TOLERANCE:g} of float",
            "met": bool(acc_f - acc_q <= ACCURACY_TOLERANCE + 1e-12),
        },
    }


def evaluate_text(model: FloatElman, ir: QuantizedModel, tflite: bytes,
                  val_ids: np.ndarray, eval_chars: int, progress: Progress = None) -> dict:
    """Float vs int8 (LiteRT) on the first ``eval_chars`` predictions of the validation
    stream; with all of them, both perplexities are the validation perplexity
    (:mod:`elman.perplexity`: one sequence, state carried)."""
    whole = eval_chars >= len(val_ids) - 1
    inputs, targets = perplexity.stream_pairs(val_ids[: eval_chars + 1])
    out = _run_litert(tflite, ir, ir.embedding[inputs][None], progress)
    flt = model.run(model.embed(inputs[None]))
    h_f, y_f = flt.h, flt.logits
    nll_f = perplexity.next_token_nll(y_f[0], targets)
    nll_q = perplexity.next_token_nll(ir.output_quant.dequantize(out.y[0]), targets)
    err = _hidden_error(ir, out.h, h_f)[0]  # (T, H)
    per_step_mean, per_step_max = err.mean(axis=1), err.max(axis=1)
    windows = []
    for start in range(0, len(inputs), DRIFT_WINDOW):
        sl = slice(start, min(start + DRIFT_WINDOW, len(inputs)))
        windows.append({
            "start": start, "steps": sl.stop - sl.start,
            "hidden_mean_abs_error": float(per_step_mean[sl].mean()),
            "hidden_max_abs_error": float(per_step_max[sl].max()),
            "float_bits_per_char": float(nll_f[sl].mean() / math.log(2)),
            "int8_bits_per_char": float(nll_q[sl].mean() / math.log(2)),
        })
    m_f, m_q = perplexity.score_nll(nll_f), perplexity.score_nll(nll_q)
    return {
        "split": "validation",
        "stream_steps": int(len(inputs)),
        "whole_stream": bool(whole),
        "perplexity": perplexity.DEFINITION if whole else
        f"on the first {len(inputs):,} characters of the validation stream only (not the "
        "validation perplexity, which runs the whole stream)",
        "metrics": {
            "float": m_f,
            "int8": m_q,
            "bits_per_char_increase": m_q["bits_per_char"] - m_f["bits_per_char"],
            "next_char_agreement": float((y_f[0].argmax(1) == out.y[0].argmax(1)).mean()),
        },
        "hidden_error": {
            "unit": hidden_error_unit(ir),
            "mean": float(err.mean()),
            "max": float(err.max()),
            "by_step": {"mean": per_step_mean[:FIRST_STEPS].tolist(),
                        "max": per_step_max[:FIRST_STEPS].tolist(),
                        "note": f"first {FIRST_STEPS} steps of the stream"},
        },
        "drift": {
            "window": DRIFT_WINDOW,
            "long_stream": bool(len(inputs) >= LONG_STREAM),
            "note": "" if len(inputs) >= LONG_STREAM else
            f"the stream has fewer than {LONG_STREAM:,} steps: too short to show drift",
            "windows": windows,
            "first_window_mean_abs_error": windows[0]["hidden_mean_abs_error"],
            "last_window_mean_abs_error": windows[-1]["hidden_mean_abs_error"],
        },
        "acceptance": {
            "criterion": f"int8 bits/char within {BPC_TOLERANCE:g} of float",
            "met": bool(m_q["bits_per_char"] - m_f["bits_per_char"] <= BPC_TOLERANCE),
        },
    }
