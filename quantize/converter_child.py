"""The TF converter's child process: ``python -m elman.quantize.converter_child JOB_DIR``.

Reads ``JOB_DIR/job.npz`` (weights ``layer{l}_kernel`` ..., calibration tuples
``calibration_x``, ``calibration_h{l}``, optional normalization and float
embedding table) and ``JOB_DIR/job.json`` (task, labels, head placement and
activation, window), builds the step model of ``L`` layers as a
``tf.function``, converts it with full-integer int8 quantization, quantizes
the embedding table with the converted ``x`` parameters, adds elman's
metadata, and writes ``JOB_DIR/model.tflite``. An expected failure is written
to ``JOB_DIR/error.txt`` (exit status 2); a crash of the converter kills only
this process.
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
# The int16 TANH's output (scale 1/32768) reaches its end 32767 from |z| ~ 5.4
# (32768 * tanh(5.5) = 32766.6); the int16 clamp is there.
PREACTIVATION_LIMIT_16 = 5.5


def layer_count(arrays: dict[str, np.ndarray]) -> int:
    count = 0
    while f"layer{count + 1}_kernel" in arrays:
        count += 1
    return count


def float_ranges(arrays: dict[str, np.ndarray], clamp_preactivation: bool = True,
                 limit: float = PREACTIVATION_LIMIT) -> dict[str, tuple[float, float]]:
    """min/max of every intermediate tensor over the calibration tuples (float32, like TF).

    TF 2.21's calibrator records FC(x)'s output range wrongly (measured: it logs the
    range of the ADD that follows, whose buffer it shares), so elman computes the
    ranges of each layer's ``a_l = in_l W_x^l + b^l``, ``r_l = h_l W_h^l``,
    ``z_l = a_l + r_l`` (keys ``a1``, ``r1``, ``z1``, ...) and of ``y`` itself and
    writes them into the calibrated model before quantizing. ``in_l`` for ``l > 1``
    is ``tanh(z_(l-1))`` of the same tuple, as in the step model.
    """
    out = {}
    layer_in = arrays["calibration_x"]
    for i in range(1, layer_count(arrays) + 1):
        a = layer_in @ arrays[f"layer{i}_kernel"] + arrays[f"layer{i}_bias"]
        r = arrays[f"calibration_h{i}"] @ arrays[f"layer{i}_recurrent_kernel"]
        z = a + r
        out.update({f"a{i}": a, f"r{i}": r, f"z{i}": z})
        layer_in = np.tanh(z)
    if "head_kernel" in arrays:
        out["y"] = layer_in @ arrays["head_kernel"] + arrays["head_bias"]
    ranges = {k: (min(float(v.min()), 0.0), max(float(v.max()), 0.0)) for k, v in out.items()}
    if clamp_preactivation:
        for key, (lo, hi) in ranges.items():
            if key.startswith("z"):
                ranges[key] = (max(lo, -limit), min(hi, limit))
    return ranges


def build_and_convert(arrays: dict[str, np.ndarray], clamp_preactivation: bool = True,
                      state_bits: int = 8) -> bytes:
    """Full-integer conversion of the step model from float weights and calibration:
    int8 (``state_bits`` 8), or 16x8 (16: int16 activations and state, int8 weights,
    int64 biases; TFLite's ``EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8``)."""
    import tensorflow as tf

    depth = layer_count(arrays)
    layers = [(tf.constant(arrays[f"layer{i}_kernel"]),
               tf.constant(arrays[f"layer{i}_recurrent_kernel"]),
               tf.constant(arrays[f"layer{i}_bias"])) for i in range(1, depth + 1)]
    has_head = "head_kernel" in arrays
    head_kernel = tf.constant(arrays["head_kernel"]) if has_head else None
    head_bias = tf.constant(arrays["head_bias"]) if has_head else None
    d = arrays["layer1_kernel"].shape[0]
    names = state_names(depth)
    specs = [tf.TensorSpec([1, d], tf.float32, name="x")] + [
        tf.TensorSpec([1, arrays[f"layer{i}_kernel"].shape[1]], tf.float32, name=names[i - 1])
        for i in range(1, depth + 1)]
    ranges = float_ranges(arrays, clamp_preactivation,
                          PREACTIVATION_LIMIT if state_bits == 8 else PREACTIVATION_LIMIT_16)

    class StepModel(tf.Module):
        @tf.function(input_signature=specs)
        def step(self, x, *states):
            out, layer_in = {}, x
            for i, ((kernel, recurrent, bias), h) in enumerate(zip(layers, states, strict=True)):
                layer_in = tf.tanh(tf.matmul(layer_in, kernel) + bias + tf.matmul(h, recurrent))
                out[f"{names[i]}_next"] = layer_in
            if has_head:
                out["y"] = tf.matmul(layer_in, head_kernel) + head_bias
            return out

    module = StepModel()
    cx = arrays["calibration_x"]
    ch = [arrays[f"calibration_h{i}"] for i in range(1, depth + 1)]

    def representative_dataset():
        for j in range(len(cx)):
            sample = {"x": cx[j:j + 1]}
            sample.update({name: h[j:j + 1] for name, h in zip(names, ch, strict=True)})
            yield sample

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.step.get_concrete_function()], module)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    # 16x8: the calibration pass keeps float inputs (the converter would retype them
    # before quantizing); quantize_16x8 makes them int16
    io_type = tf.int8 if state_bits == 8 else tf.float32
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if state_bits == 8 else
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    if hasattr(converter, "_experimental_disable_per_channel_quantization_for_dense_layers"):
        converter._experimental_disable_per_channel_quantization_for_dense_layers = False
    # The converter's own two phases (what TFLiteConverter.convert does), with the
    # intermediate ranges set in between (see float_ranges).
    converter._experimental_calibrate_only = True
    calibrated = set_ranges(bytes(converter.convert()), ranges, state_bits)
    from tensorflow.lite.python import convert

    if state_bits == 16:
        return quantize_16x8(calibrated)
    return bytes(convert.mlir_quantize(
        calibrated, disable_per_channel=False, input_data_type=tf.int8,
        output_data_type=tf.int8, disable_per_channel_for_dense_layers=False))


def quantize_16x8(calibrated: bytes) -> bytes:
    """The 16x8 quantization of a calibrated model, from the ranges written in it.

    TFLiteConverter quantizes 16x8 with its older quantizer, which calibrates again and
    would overwrite the ranges of :func:`set_ranges` with the calibrator's; the MLIR
    quantizer refuses int16 inputs. So the older quantizer is run here on the model as
    it is, without feeding it a sample: with no statistics of its own, it keeps the
    ranges already in the model."""
    from tensorflow.lite.python.optimize import calibrator

    wrapper = calibrator.Calibrator(calibrated)._calibrator  # noqa: SLF001
    int16, int64 = np.dtype(np.int16).num, np.dtype(np.int64).num
    return bytes(wrapper.QuantizeModel(int16, int16, False, int16, int64, False, False))


def state_names(depth: int) -> list[str]:
    """Input names of the states: ``h`` for one layer (as elman always wrote it), else
    ``h1`` .. ``hL``."""
    return ["h"] if depth == 1 else [f"h{i}" for i in range(1, depth + 1)]


def set_ranges(calibrated: bytes, ranges: dict[str, tuple[float, float]], state_bits: int = 8
               ) -> bytes:
    """Write the min/max of every a_l, r_l, z_l (and y) into the calibrated float model.

    Tensors are found by structure: each z_l is the output of an ADD read by a TANH,
    a_l and r_l its inputs (r_l is produced by the FULLY_CONNECTED that reads a state
    input; see :func:`_split_cell_fcs`). Layer 1's FC(x) reads a subgraph input; layer
    l's reads layer l-1's TANH output. y is the output of the FULLY_CONNECTED that
    reads the last TANH's output.
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
    depth = sum(1 for k in ranges if k.startswith("z"))
    if len(ops["add"]) != depth or len(ops["tanh"]) != depth:
        raise RuntimeError(f"the calibrated step model is not {depth} x (FC, FC, ADD, TANH)"
                           "[, FC]")
    producer = {int(op.outputs[0]): op for op in graph.operators}
    tanh_outputs = {int(op.outputs[0]) for op in ops["tanh"]}
    graph_inputs = {int(t) for t in graph.inputs}
    cells = []  # (fc_in, fc_rec, add, tanh) per layer, unordered
    for tanh in ops["tanh"]:
        add = producer.get(int(tanh.inputs[0]))
        if add is None or add not in ops["add"]:
            raise RuntimeError("a TANH of the calibrated step model does not read an ADD")
        rec, inp = _split_cell_fcs(graph, [producer[int(t)] for t in add.inputs],
                                   tanh_outputs, graph_inputs, state_bits)
        cells.append((inp, rec, add, tanh))
    ordered, source = [], None  # layer 1 reads a subgraph input, layer l the TANH of l-1
    for _ in range(depth):
        nxt = [c for c in cells if (int(c[0].inputs[0]) in graph_inputs if source is None
                                    else int(c[0].inputs[0]) == source)]
        if len(nxt) != 1:
            raise RuntimeError("cannot order the layers of the calibrated step model")
        ordered.append(nxt[0])
        source = int(nxt[0][3].outputs[0])
    tensor_of = {}
    for i, (inp, rec, add, _) in enumerate(ordered, start=1):
        tensor_of.update({f"z{i}": int(add.outputs[0]), f"a{i}": int(inp.outputs[0]),
                          f"r{i}": int(rec.outputs[0])})
    for fc in ops["fc"]:
        if int(fc.inputs[0]) == source:
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


def _split_cell_fcs(graph, fcs: list, tanh_outputs: set[int], graph_inputs: set[int],
                    state_bits: int = 8) -> tuple:
    """(FC(h), FC(in)) of one layer of the calibrated float model: FC(in) of a layer above
    the first reads a TANH output; else FC(h) has no bias, or else reads a [1, units]
    subgraph input whose calibrated range is the pinned state range ([-1, 127/128], or
    +-32767/32768 for an int16 state)."""
    lo, hi = (-1.0, 127.0 / 128.0) if state_bits == 8 else (-32767 / 32768, 32767 / 32768)
    def reads_tanh(op) -> bool:
        return int(op.inputs[0]) in tanh_outputs

    def no_bias(op) -> bool:
        return len(op.inputs) < 3 or op.inputs[2] < 0

    def reads_state(op) -> bool:
        q = graph.tensors[int(op.inputs[0])].quantization
        return (int(op.inputs[0]) in graph_inputs and q is not None and q.min is not None
                and q.max is not None
                and float(q.min[0]) == lo and float(q.max[0]) == hi)

    if len(fcs) != 2:
        raise RuntimeError("an ADD of the calibrated step model does not add two FCs")
    for rule, picks_input in ((reads_tanh, True), (no_bias, False), (reads_state, False)):
        picked = [op for op in fcs if rule(op)]
        if len(picked) == 1:
            other = fcs[1] if picked[0] is fcs[0] else fcs[0]
            return (other, picked[0]) if picks_input else (picked[0], other)
    raise RuntimeError("cannot tell FC(x) from FC(h) in the calibrated step model")


def run_job(job: Path) -> bytes:
    from elman.quantize.integrity import seal
    from elman.quantize.metadata import StepMetadata, add_metadata
    from elman.quantize.reader import read_step_graph

    with np.load(job / "job.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    info = json.loads((job / "job.json").read_text())
    model = build_and_convert(arrays, bool(info.get("clamp_preactivation", True)),
                              int(info.get("state_bits", 8)))
    embedding = None
    if "embedding" in arrays:
        x_params = read_step_graph(model, "the converted step model").input_quant
        embedding = x_params.quantize(arrays["embedding"])
    meta = StepMetadata(
        task=info["task"], labels=tuple(info["labels"]),
        norm_mean=arrays.get("norm_mean"), norm_std=arrays.get("norm_std"),
        embedding=embedding, head_steps=info.get("head_steps"),
        head_activation=info.get("head_activation", "linear"),
        window_steps=int(info.get("window_steps", 0)),
        input_stride=int(info.get("input_stride", 1)),
        stride_mode=info.get("stride_mode", "sample"),
        input_deltas=bool(info.get("input_deltas", False)),
    )
    return seal(add_metadata(model, meta.to_entries()))  # the checksum comes last


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
