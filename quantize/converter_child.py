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


def float_ranges(arrays: dict[str, np.ndarray], clamp_preactivation: bool = True
                 ) -> dict[str, tuple[float, float]]:
    """min/max of every intermediate tensor over the calibration pairs (float32, like TF).

    TF 2.21's calibrator records FC(x)'s output range wrongly (measured: it logs the
    range of the ADD that follows, whose buffer it shares), so elman computes the
    ranges of ``a = x W_x + b``, ``r = h W_h``, ``z = a + r`` and ``y`` itself and
    writes them into the calibrated model before quantizing.
    """
    cx, ch = arrays["calibration_x"], arrays["calibration_h"]
    a = cx @ arrays["kernel"] + arrays["bias"]
    r = ch @ arrays["recurrent_kernel"]
    z = a + r
    out = {"a": a, "r": r, "z": z}
    if "head_kernel" in arrays:
        out["y"] = np.tanh(z) @ arrays["head_kernel"] + arrays["head_bias"]
    ranges = {k: (min(float(v.min()), 0.0), max(float(v.max()), 0.0)) for k, v in out.items()}
    if clamp_preactivation:
        lo, hi = ranges["z"]
        ranges["z"] = (max(lo, -PREACTIVATION_LIMIT), min(hi, PREACTIVATION_LIMIT))
    return ranges


def build_and_convert(arrays: dict[str, np.ndarray], clamp_preactivation: bool = True) -> bytes:
    """Full-integer int8 conversion of the step model from float weights and calibration."""
    import tensorflow as tf

    kernel = tf.constant(arrays["kernel"])
    recurrent = tf.constant(arrays["recurrent_kernel"])
    bias = tf.constant(arrays["bias"])
    has_head = "head_kernel" in arrays
    head_kernel = tf.constant(arrays["head_kernel"]) if has_head else None
    head_bias = tf.constant(arrays["head_bias"]) if has_head else None
    d, units = arrays["kernel"].shape
    ranges = float_ranges(arrays, clamp_preactivation)

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
    # The converter's own two phases (what TFLiteConverter.convert does), with the
    # intermediate ranges set in between (see float_ranges).
    converter._experimental_calibrate_only = True
    calibrated = set_ranges(bytes(converter.convert()), ranges)
    from tensorflow.lite.python import convert

    return bytes(convert.mlir_quantize(
        calibrated, disable_per_channel=False, input_data_type=tf.int8,
        output_data_type=tf.int8, disable_per_channel_for_dense_layers=False))


def set_ranges(calibrated: bytes, ranges: dict[str, tuple[float, float]]) -> bytes:
    """Write the min/max of a, r, z (and y) into the calibrated float step model.

    Tensors are found by structure: z is the output of the one ADD, a and r its
    inputs (r is produced by the FULLY_CONNECTED without bias, which reads h), y
    the output of the FULLY_CONNECTED that reads TANH's output.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(calibrated))
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    graph = model.subgraphs[0]
    ops = {name: [op for op in graph.operators if codes[op.opcodeIndex] == code]
           for name, code in (("fc", schema.BuiltinOperator.FULLY_CONNECTED),
                              ("add", schema.BuiltinOperator.ADD),
                              ("tanh", schema.BuiltinOperator.TANH))}
    if len(ops["add"]) != 1 or len(ops["tanh"]) != 1:
        raise RuntimeError("the calibrated step model is not FC, FC, ADD, TANH[, FC]")
    add, tanh = ops["add"][0], ops["tanh"][0]
    producer = {int(op.outputs[0]): op for op in ops["fc"]}
    rec, inp = _split_cell_fcs(graph, [producer[int(t)] for t in add.inputs])
    tensor_of = {"z": int(add.outputs[0]), "a": int(inp.outputs[0]), "r": int(rec.outputs[0])}
    for fc in ops["fc"]:
        if int(fc.inputs[0]) == int(tanh.outputs[0]):
            tensor_of["y"] = int(fc.outputs[0])
    if set(tensor_of) != set(ranges):
        raise RuntimeError(f"found tensors {sorted(tensor_of)} in the calibrated model, "
                           f"expected {sorted(ranges)}")
    for name, index in tensor_of.items():
        q = graph.tensors[index].quantization
        if q is None or q.min is None or q.max is None:
            raise RuntimeError(f"the calibrated step model has no range for {name}")
        q.min = np.array([ranges[name][0]], np.float32)
        q.max = np.array([ranges[name][1]], np.float32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _split_cell_fcs(graph, fcs: list) -> tuple:
    """(FC(h), FC(x)) of the calibrated float model: FC(h) has no bias, or else reads a
    [1, units] input whose calibrated range is the pinned state range [-1, 127/128]."""
    def no_bias(op) -> bool:
        return len(op.inputs) < 3 or op.inputs[2] < 0

    def reads_state(op) -> bool:
        q = graph.tensors[int(op.inputs[0])].quantization
        return (q is not None and q.min is not None and q.max is not None
                and float(q.min[0]) == -1.0 and float(q.max[0]) == 127.0 / 128.0)

    for rule in (no_bias, reads_state):
        picked = [op for op in fcs if rule(op)]
        if len(picked) == 1:
            return picked[0], fcs[1] if picked[0] is fcs[0] else fcs[0]
    raise RuntimeError("cannot tell FC(x) from FC(h) in the calibrated step model")


def run_job(job: Path) -> bytes:
    from elman.quantize.metadata import StepMetadata, add_metadata
    from elman.quantize.reader import read_step_graph

    with np.load(job / "job.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    info = json.loads((job / "job.json").read_text())
    model = build_and_convert(arrays, bool(info.get("clamp_preactivation", True)))
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
