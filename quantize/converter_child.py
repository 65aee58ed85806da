"""The TF converter's child process: ``python -m elman.quantize.converter_child JOB_DIR``.

Reads ``JOB_DIR/job.npz`` (weights, calibration pairs, optional normalization
and float embedding table) and ``JOB_DIR/job.json`` (task, labels), builds the
step model as a ``tf.function``, converts it with full-integer int8
quantization, quantizes the embedding table with the converted ``x``
parameters, adds elman's metadata, and writes ``JOB_DIR/model.tflite``. An
expected failure is written to ``JOB_DIR/error.txt`` (exit status 2); a crash
of the converter kills only this process.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

# TANH's int8 output saturates for |z| >= 3.2 (128 * tanh(3.2) = 127.58 rounds past the
# int8 ends), so ADD's output range never needs to extend beyond it: clamping the
# calibrated range there gives the pre-activation up to ~4x finer steps at no cost.
PREACTIVATION_LIMIT = 3.2


def preactivation_range(arrays: dict[str, np.ndarray]) -> tuple[float, float]:
    """The calibrated range of ``z = x W_x + b + h W_h``, clamped to +-PREACTIVATION_LIMIT."""
    z = (arrays["calibration_x"].astype(np.float64) @ arrays["kernel"] + arrays["bias"]
         + arrays["calibration_h"].astype(np.float64) @ arrays["recurrent_kernel"])
    lo = max(min(float(z.min()), 0.0), -PREACTIVATION_LIMIT)
    hi = min(max(float(z.max()), 0.0), PREACTIVATION_LIMIT)
    return lo, hi


def build_and_convert(arrays: dict[str, np.ndarray]) -> bytes:
    """Full-integer int8 conversion of the step model from float weights and calibration."""
    import tensorflow as tf

    kernel = tf.constant(arrays["kernel"])
    recurrent = tf.constant(arrays["recurrent_kernel"])
    bias = tf.constant(arrays["bias"])
    has_head = "head_kernel" in arrays
    head_kernel = tf.constant(arrays["head_kernel"]) if has_head else None
    head_bias = tf.constant(arrays["head_bias"]) if has_head else None
    d, units = arrays["kernel"].shape
    z_min, z_max = preactivation_range(arrays)

    class StepModel(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, d], tf.float32, name="x"),
                                      tf.TensorSpec([1, units], tf.float32, name="h")])
        def step(self, x, h):
            h_new = tf.tanh(tf.matmul(x, kernel) + bias + tf.matmul(h, recurrent))
            out = {"h_next": h_new}
            if has_head:
                out["y"] = tf.matmul(h_new, head_kernel) + head_bias
            return out

    module = StepModel()
    cx, ch = arrays["calibration_x"], arrays["calibration_h"]

    def representative_dataset():
        for i in range(len(cx)):
            yield {"x": cx[i:i + 1], "h": ch[i:i + 1]}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.step.get_concrete_function()], module)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    if hasattr(converter, "_experimental_disable_per_channel_quantization_for_dense_layers"):
        converter._experimental_disable_per_channel_quantization_for_dense_layers = False
    # The converter's own two phases (what TFLiteConverter.convert does), with the ADD
    # output's calibrated min/max clamped in between.
    converter._experimental_calibrate_only = True
    calibrated = clamp_add_range(bytes(converter.convert()), z_min, z_max)
    from tensorflow.lite.python import convert

    return bytes(convert.mlir_quantize(
        calibrated, disable_per_channel=False, input_data_type=tf.int8,
        output_data_type=tf.int8, disable_per_channel_for_dense_layers=False))


def clamp_add_range(calibrated: bytes, z_min: float, z_max: float) -> bytes:
    """Set the calibrated min/max of the ADD output (the pre-activation) to [z_min, z_max]."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(calibrated))
    add_codes = [i for i, c in enumerate(model.operatorCodes)
                 if max(c.builtinCode, c.deprecatedBuiltinCode) == schema.BuiltinOperator.ADD]
    graph = model.subgraphs[0]
    adds = [op for op in graph.operators if op.opcodeIndex in add_codes]
    if len(adds) != 1:
        raise RuntimeError(f"the calibrated step model has {len(adds)} ADD operators, expected 1")
    q = graph.tensors[adds[0].outputs[0]].quantization
    if q is None or q.min is None or q.max is None:
        raise RuntimeError("the calibrated step model has no range for the ADD output")
    q.min = np.array([z_min], np.float32)
    q.max = np.array([z_max], np.float32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def run_job(job: Path) -> bytes:
    from elman.quantize.metadata import StepMetadata, add_metadata
    from elman.quantize.reader import read_step_graph

    with np.load(job / "job.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    info = json.loads((job / "job.json").read_text())
    model = build_and_convert(arrays)
    graph = read_step_graph(model, "the converted step model")
    embedding = None
    if "embedding" in arrays:
        embedding = graph.input_fc.input.quantize(arrays["embedding"])
    meta = StepMetadata(
        task=info["task"], labels=tuple(info["labels"]),
        norm_mean=arrays.get("norm_mean"), norm_std=arrays.get("norm_std"),
        embedding=embedding,
    )
    return add_metadata(model, meta.to_entries())


def main(argv: list[str]) -> int:
    job = Path(argv[1])
    crash = os.environ.get("ELMAN_TEST_CONVERTER_SIGNAL")
    if crash:  # test hook: a real crash of this process, by the named signal
        os.kill(os.getpid(), getattr(signal, crash))
    from elman.errors import ElmanError

    try:
        model = run_job(job)
    except ElmanError as exc:
        (job / "error.txt").write_text(str(exc))
        return 2
    except Exception as exc:  # the converter's own errors: report them, not a traceback
        (job / "error.txt").write_text(f"{type(exc).__name__}: {exc}")
        return 2
    (job / "model.tflite").write_bytes(model)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
