"""``quantize_run``: RUN_DIR/model.keras -> model_int8.tflite + quant_report.json.

1. Load the Keras model and read it by structure (``Input -> [Normalization] ->
   [Masking] -> SimpleRNN x 1-3 -> [Dropout] -> Dense``, ``Embedding`` for
   text), refusing anything else with every problem listed, before any
   conversion.
2. Calibrate on the run's real training data (inputs and every layer's own
   float hidden states) and convert the one-step model to int8 in a child
   process.
3. Read the result back with the TF-free reader (validating the graph and the
   pinned states) and compare float vs int8 on the held-out split in LiteRT.
4. Write both files at once (``staged_outputs``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from elman.quantize import calibration, evaluate, state_comparison, task_metrics
from elman.quantize.ir import QuantizedModel
from elman.quantize.keras_model import KerasElman, load_keras_model, read_keras
from elman.quantize.reader import read_ir
from elman.quantize.step_model import MAX_CALIBRATION_SAMPLES, convert_step_model
from tqdm import tqdm

from elman import __version__, provenance, rundir
from elman.errors import ElmanError, ModelError

REPORT_FORMAT = "elman-quant-report/1"
STATES = {"int8": 8, "int16": 16}  # --state: the width of activations and state
EVAL_CHARS = None  # text: the whole validation stream (elman.perplexity's definition)
NORMALIZATION_RTOL = 1e-5


def quantize_run(run_dir: Path | str, progress: bool = True, *,
                 eval_chars: int | None = EVAL_CHARS,
                 calibration_samples: int = MAX_CALIBRATION_SAMPLES,
                 input_percentile: float | None = None,
                 state: str = "int8", compare_int8: bool = True) -> dict:
    """Quantize a trained run; returns the report (also written as ``quant_report.json``).

    ``input_percentile`` (sensor models): the calibration range of ``x`` is the
    ``[100 - p, p]`` percentile range of the training inputs (100: min/max; default
    99.9 for the int8 state, 100 for int16, :func:`calibration.default_input_percentile`).
    ``state``: ``int8`` (full int8), or ``int16`` (16x8: int16 activations and state,
    int8 weights, int64 biases). ``compare_int8`` (int16 state): also convert and evaluate
    the int8 state on the same data, the report's ``state_comparison``
    (:mod:`elman.quantize.state_comparison`).
    """
    if state not in STATES:
        raise ElmanError(f"--state must be one of {', '.join(STATES)}, got {state!r}")
    if input_percentile is None:
        input_percentile = calibration.default_input_percentile(STATES[state])
    if not 50 < input_percentile <= 100:
        raise ElmanError(f"input percentile must be in (50, 100], got {input_percentile}")
    from elman.data.spec import load_run_data, read_spec

    run_dir = Path(run_dir)
    stage_run = provenance.begin(run_dir, "quantize",
                                 reads=[rundir.MODEL_KERAS, rundir.DATA_SPEC])
    model_path = run_dir / rundir.MODEL_KERAS
    spec = read_spec(run_dir / rundir.DATA_SPEC).fields
    task = spec["task"]
    keras_model = load_keras_model(model_path)
    # refuse an unsupported model before loading data or converting anything
    read_keras(keras_model, task, what=str(model_path))
    data = load_run_data(run_dir)
    extra: dict = {}
    if task == "language_model":
        labels = list(data.vocab)
        found = read_keras(keras_model, task, len(labels), len(labels), what=str(model_path))
        cal_x, cal_h = calibration.text_calibration(found.model, data.train_ids,
                                                    calibration_samples)
    else:
        labels = list(data.classes)
        found = read_keras(keras_model, task, data.x_train.shape[2], len(labels),
                           what=str(model_path))
        cal_x, cal_h = calibration.classification_calibration(
            found.model, data.x_train, calibration_samples, input_percentile)
        extra = _normalization(spec, found, run_dir / rundir.DATA_SPEC)
        if spec.get("stride", 1) > 1:  # the device makes one step of every k samples
            extra.update(input_stride=spec["stride"],
                         stride_mode=spec.get("stride_mode", "sample"))
        if spec.get("deltas"):  # the device follows each sample with its first difference
            extra.update(input_deltas=True)
    window = _window_steps(spec, found)
    if progress:
        tqdm.write(f"converting the step model ({len(cal_x)} calibration tuples, "
                   f"{found.model.depth} layer(s))...")
    tflite_bytes = convert_step_model(found.model, cal_x, cal_h, task=task, labels=labels,
                                      window_steps=window, state_bits=STATES[state], **extra)
    ir = read_ir(tflite_bytes)
    result = _evaluate(found, data, task, ir, tflite_bytes, eval_chars, progress,
                       f"{state} in LiteRT")
    comparison = None
    if state == "int16" and compare_int8:
        if progress:
            tqdm.write("converting the same model with an int8 state, for comparison...")
        cal8_x, cal8_h = cal_x, cal_h  # text: the same tuples (no input percentile)
        if task != "language_model":
            cal8_x, cal8_h = calibration.classification_calibration(
                found.model, data.x_train, calibration_samples,
                calibration.default_input_percentile(8))
        int8_bytes = convert_step_model(found.model, cal8_x, cal8_h, task=task, labels=labels,
                                        window_steps=window, state_bits=8, **extra)
        int8_ir = read_ir(int8_bytes)
        int8 = _evaluate(found, data, task, int8_ir, int8_bytes, eval_chars, progress,
                         "int8 in LiteRT")
        sizes = tuple(model_summary(m)["parameter_bytes"]["total"] for m in (int8_ir, ir))
        comparison = state_comparison.side_by_side(int8, result, sizes)
    report = {
        "format": REPORT_FORMAT,
        "elman_version": __version__,
        "task": task,
        "data": data.source,
        "keras_model": found.summary(),
        "model": model_summary(ir),
        "quantization": quantization_summary(
            ir, len(cal_x) + 2, None if task == "language_model" else input_percentile),
        "evaluation": {
            "interpreter": "LiteRT (ai_edge_litert) BUILTIN_REF kernels, one invoke per step, "
                           "int8 h_t fed back as h_(t-1)",
            "float_reference": "the Keras model's weights in float32 numpy",
            **result,
        },
    }
    report["quantization"]["weight_rounding"] = weight_rounding(found.model, ir)
    if comparison is not None:
        report["state_comparison"] = comparison
    with stage_run.outputs() as stage:
        stage.write_bytes(rundir.MODEL_TFLITE, tflite_bytes)
        stage.write_json(rundir.QUANT_REPORT, report)
    return report


def _evaluate(found: KerasElman, data, task: str, ir: QuantizedModel, tflite_bytes: bytes,
              eval_chars: int | None, progress: bool, desc: str) -> dict:
    """Float vs the quantized model (LiteRT, one step at a time) on the held-out data."""
    if task == "language_model":
        steps = len(data.val_ids) - 1
        if eval_chars is not None:
            steps = min(eval_chars, steps)
        with tqdm(total=steps, disable=not progress, desc=desc, unit="step",
                  leave=False) as bar:
            return evaluate.evaluate_text(found.model, ir, tflite_bytes, data.val_ids, steps,
                                          bar.update)
    total = data.x_test.shape[0] * data.x_test.shape[1]
    with tqdm(total=total, disable=not progress, desc=desc, unit="step", leave=False) as bar:
        return evaluate.evaluate_classification(found.model, ir, tflite_bytes, data.x_test,
                                                data.y_test, bar.update,
                                                lengths=data.lengths_test)


def _normalization(spec: dict, found: KerasElman, path: Path) -> dict:
    """The stored per-channel normalization (from the data spec), checked against a
    Normalization layer of the model when it has one."""
    try:
        norm = spec["input"]["normalization"]
        mean = np.array(norm["mean"], np.float64)
        std = np.array(norm["std"], np.float64)
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"{path}: input.normalization needs 'mean' and 'std' lists") from None
    if found.has_normalization and not (
            np.allclose(mean, found.norm_mean, rtol=NORMALIZATION_RTOL, atol=0)
            and np.allclose(std, found.norm_std, rtol=NORMALIZATION_RTOL, atol=0)):
        raise ModelError(f"{path}: its normalization differs from the model's Normalization "
                         "layer; write the data spec again with `elman import`")
    return {"norm_mean": mean.astype(np.float32), "norm_std": std.astype(np.float32)}


def _window_steps(spec: dict, found: KerasElman) -> int:
    """The window a classifier answering at its last step was trained on (0: streams)."""
    if found.task == "language_model" or found.model.head_steps == "every":
        return 0
    steps = (spec.get("input") or {}).get("timesteps")
    return int(steps) if isinstance(steps, int) and steps > 0 else 0


def model_summary(ir: QuantizedModel) -> dict:
    fcs = [fc for layer in ir.layers for fc in (layer.input_fc, layer.recurrent_fc)] + (
        [ir.head.fc] if ir.head is not None else [])
    # bytes as stored (and as the generated C declares them): int8 weights; int32 biases and
    # an int8 embedding, or with an int16 state (16x8) int64 biases and an int16 embedding
    weight_bytes = sum(fc.weights.nbytes for fc in fcs)
    bias_bytes = sum(fc.bias.nbytes for fc in fcs if fc.has_bias)
    emb = 0 if ir.embedding is None else int(ir.embedding.nbytes)
    bias_key, emb_key = ("int32_biases", "int8_embedding") if ir.state_bits == 8 else (
        "int64_biases", "int16_embedding")
    return {
        "tflite_bytes": ir.model_bytes,
        "sha256": ir.source_sha256,
        "input_dim": ir.input_dim,
        "units": ir.layer_units[0] if len(ir.layers) == 1 else list(ir.layer_units),
        "output_dim": ir.output_dim,
        "vocab_size": ir.vocab_size,
        "macs_per_step": ir.macs_per_step,
        "parameter_bytes": {"int8_weights": int(weight_bytes), bias_key: int(bias_bytes),
                            emb_key: emb,
                            "total": int(weight_bytes + bias_bytes + emb)},
    }


def weight_rounding(model, ir: QuantizedModel) -> dict:
    """How far the float model's kernels are from the int8 weights the converter stored,
    in steps of each output channel's scale: 0 when the quantized weights are exactly the
    float model's (``elman train --qat-weights``), up to 0.5 otherwise."""
    pairs = [(q.input_fc, f.kernel) for q, f in zip(ir.layers, model.layers, strict=True)]
    pairs += [(q.recurrent_fc, f.recurrent_kernel)
              for q, f in zip(ir.layers, model.layers, strict=True)]
    if ir.head is not None and model.head_kernel is not None:
        pairs.append((ir.head.fc, model.head_kernel))
    steps = max(float(np.abs(np.asarray(kernel, np.float64).T
                             / fc.weight_scales.astype(np.float64)[:, None]
                             - fc.weights).max()) for fc, kernel in pairs)
    return {"max_steps": steps, "on_grid": steps < 1e-3,
            "note": "max |w / scale - q| over every FULLY_CONNECTED weight (q: the stored int8 "
                    "weight, scale: its output channel's); 0: the int8 weights are the float "
                    "model's own (elman train --qat-weights)"}


def _qp(q) -> dict:
    return {"scale": float(q.scale), "zero_point": int(q.zero_point)}


def _fraction(scale: float) -> str:
    return f"1/{round(1 / scale)}"


def quantization_summary(ir: QuantizedModel, calibration_pairs: int,
                         input_percentile: float | None) -> dict:
    return {
        "scheme": "full integer: int8 activations (per tensor, asymmetric), int8 weights "
                  "(per output channel, symmetric), int32 biases" if ir.state_bits == 8 else
                  "16x8: int16 activations (per tensor, symmetric), int8 weights (per output "
                  "channel, symmetric), int64 biases",
        "state_bits": ir.state_bits,
        "input": _qp(ir.input_quant),
        "state": {**_qp(ir.state_quant), "pinned": True,
                  "note": f"h input == TANH output ({_fraction(ir.state_quant.scale)}, 0): "
                          "h_t feeds back unchanged"},
        "fc_x_output": _qp(ir.layers[0].input_fc.output),
        "fc_h_output": _qp(ir.layers[0].recurrent_fc.output),
        "add_output": _qp(ir.layers[0].add.output),
        "output": None if ir.output_quant is None else _qp(ir.output_quant),
        "calibration": {
            "pairs": calibration_pairs,
            "source": "training split: real inputs and the float model's own hidden states "
                      "(text: long streams with the state carried, plus every embedding row)",
            "state_clip": [-1.0, 127 / 128] if ir.state_bits == 8 else
            [-32767 / 32768, 32767 / 32768],
            "input_range": "every embedding row" if input_percentile is None else
            f"{100 - input_percentile:g} to {input_percentile:g} percentile of training inputs",
            "preactivation_limit": "ADD output range clamped to "
            f"+-{3.2 if ir.state_bits == 8 else 5.5} (TANH saturates there)",
        },
    }


def summary_table(report: dict) -> str:
    """The printed table of ``elman quantize``."""
    ev = report["evaluation"]
    m = ev["metrics"]
    q = report["quantization"]
    quantized = "int8" if q.get("state_bits", 8) == 8 else "16x8"  # the converted model
    lines = [f"quantized {report['data']} ({report['task']}): "
             f"{report['model']['tflite_bytes']:,} bytes, units {report['model']['units']}",
             f"{'metric':<28}{'float':>12}{quantized:>12}"]
    if report["task"] == "classification":
        name, acc_f = task_metrics.headline(m["float"])
        _, acc_q = task_metrics.headline(m["int8"])
        lines.append(f"{name + ' (' + str(ev['sequences']) + ' test seqs)':<28}"
                     f"{acc_f:>12.4f}{acc_q:>12.4f}")
        if "switch_delay" in m["float"]:
            d_f, d_q = m["float"]["switch_delay"], m["int8"]["switch_delay"]
            lines.append(f"{'median switch delay (steps)':<28}"
                         f"{_num(d_f['median_steps']):>12}{_num(d_q['median_steps']):>12}")
        lines.append(f"{'prediction agreement':<28}{m['prediction_agreement']:>24.4f}")
    else:
        what = "validation" if ev.get("whole_stream") else \
            f"first {ev['stream_steps']:,} chars"
        lines.append(f"{'bits/char (' + what + ')':<28}"
                     f"{m['float']['bits_per_char']:>12.4f}{m['int8']['bits_per_char']:>12.4f}")
        lines.append(f"{'perplexity (' + what + ')':<28}"
                     f"{m['float']['perplexity']:>12.4f}{m['int8']['perplexity']:>12.4f}")
        d = ev["drift"]
        lines.append(f"{'hidden error first/last 1k':<28}"
                     f"{d['first_window_mean_abs_error']:>12.5f}"
                     f"{d['last_window_mean_abs_error']:>12.5f}")
    he = ev["hidden_error"]
    lines.append(f"{'hidden |error| mean / max':<28}{he['mean']:>12.5f}{he['max']:>12.5f}")
    lines.append(f"state quantization: scale {q['state']['scale']} zero point "
                 f"{q['state']['zero_point']} (pinned); input scale {q['input']['scale']:.6g} "
                 f"zero point {q['input']['zero_point']}")
    for note in report.get("keras_model", {}).get("notes", []):
        lines.append(f"note: {note}")
    rounding = q.get("weight_rounding")
    if rounding and q["state_bits"] == 16 and not rounding["on_grid"]:
        lines.append(f"note: the float weights are off the int8 grid (by up to "
                     f"{rounding['max_steps']:.2f} of a step): the int8 weights add to the int16 "
                     "state's error; `elman train --qat-weights` (the default of `elman run "
                     "--state int16`) trains them onto it")
    acc = ev["acceptance"]
    lines.append(f"acceptance ({acc['criterion']}): {'met' if acc['met'] else 'NOT met'}")
    if report.get("state_comparison"):
        lines += state_comparison.text_lines(report["state_comparison"])
    return "\n".join(lines)


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"
