"""The IR reader on real converted step models: every field equals what LiteRT sees."""

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from elman.quantize.ir import QuantizedModel
from elman.quantize.reader import read_ir
from elman.quantize.testing import random_step_tflite
from stacked_tflite import stacked_step_tflite

from elman.errors import ModelError


def _litert_cell(model: bytes):
    """The interpreter's own view: FC/ADD/TANH ops and their tensors, found by op type."""
    it = Interpreter(model_content=model)
    it.allocate_tensors()
    ops = it._get_ops_details()
    details = {d["index"]: d for d in it.get_tensor_details()}
    by = {}
    for op in ops:
        by.setdefault(op["op_name"], []).append(op)
    (tanh,) = by["TANH"]
    (add,) = by["ADD"]
    fc_of = {int(op["outputs"][0]): op for op in by["FULLY_CONNECTED"]}
    cell = [fc_of[int(t)] for t in add["inputs"]]
    head = [op for op in by["FULLY_CONNECTED"] if int(op["inputs"][0]) == tanh["outputs"][0]]
    return it, details, cell, add, tanh, head


def _assert_fc_matches(fc, op, it, details):
    x_idx, w_idx, b_idx = (int(i) for i in op["inputs"])
    w = details[w_idx]["quantization_parameters"]
    np.testing.assert_array_equal(fc.weights, it.get_tensor(w_idx))
    assert fc.weights.dtype == np.int8
    np.testing.assert_array_equal(fc.weight_scales, w["scales"])
    np.testing.assert_array_equal(w["zero_points"], 0)
    if b_idx >= 0:
        assert fc.has_bias
        bias = it.get_tensor(b_idx)
        assert bias.dtype == np.int32
        np.testing.assert_array_equal(fc.bias, bias)
    else:
        assert not fc.has_bias
        np.testing.assert_array_equal(fc.bias, 0)
    assert (fc.input.scale, fc.input.zero_point) == details[x_idx]["quantization"]
    out = details[int(op["outputs"][0])]["quantization"]
    assert (fc.output.scale, fc.output.zero_point) == out


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((6, 16, 4), {}),
        ((5, 7, 0), {"seed": 3, "x_range": 20.0}),
        ((8, 8, 11), {"task": "language_model", "vocab_size": 11, "x_range": 3.0}),
    ],
)
def test_ir_fields_equal_litert_tensor_details(args, kwargs):
    model = random_step_tflite(*args, **kwargs)
    ir = read_ir(model)
    it, details, cell, add, tanh, head = _litert_cell(model)
    inputs = it.get_input_details()
    outputs = it.get_output_details()
    # pinned state: h input and TANH output are (1/128, 0) in the interpreter too
    (layer,) = ir.layers
    assert inputs[ir.signature.h_inputs[0]]["quantization"] == (0.0078125, 0)
    assert details[int(tanh["outputs"][0])]["quantization"] == (0.0078125, 0)
    assert outputs[ir.signature.h_outputs[0]]["index"] == int(tanh["outputs"][0])
    assert ir.state_quant.scale == 1 / 128 and ir.state_quant.zero_point == 0
    # roles: FC(x) reads x, FC(h) reads h
    x_idx = inputs[ir.signature.x_input]["index"]
    h_idx = inputs[ir.signature.h_inputs[0]]["index"]
    in_op = next(op for op in cell if int(op["inputs"][0]) == x_idx)
    rec_op = next(op for op in cell if int(op["inputs"][0]) == h_idx)
    _assert_fc_matches(layer.input_fc, in_op, it, details)
    _assert_fc_matches(layer.recurrent_fc, rec_op, it, details)
    z = details[int(add["outputs"][0])]["quantization"]
    assert (layer.add.output.scale, layer.add.output.zero_point) == z
    assert (layer.tanh.input.scale, layer.tanh.input.zero_point) == z
    if args[2]:
        _assert_fc_matches(ir.head.fc, head[0], it, details)
        assert outputs[ir.signature.y_output]["index"] == int(head[0]["outputs"][0])
        # old files carry no head mode: a classifier answers at the last step, an LM at each
        assert ir.head.every_step == (ir.task == "language_model")
        assert ir.head.activation == "linear" and ir.window_steps == 0
    else:
        assert ir.head is None and not head and ir.signature.y_output is None
    assert ir.input_dim == args[0] and ir.layer_units == (args[1],)
    assert ir.output_dim == args[2] and ir.state_bytes == args[1]
    assert ir.model_bytes == len(model)


@pytest.mark.parametrize("run_fixture", ["bm_run", "text_run"])
def test_ir_of_real_runs_equals_litert_tensor_details(run_fixture, request):
    from elman import rundir

    model = (request.getfixturevalue(run_fixture) / rundir.MODEL_TFLITE).read_bytes()
    ir = read_ir(model)
    it, details, cell, add, tanh, head = _litert_cell(model)
    inputs = it.get_input_details()
    (layer,) = ir.layers
    x_idx = inputs[ir.signature.x_input]["index"]
    h_idx = inputs[ir.signature.h_inputs[0]]["index"]
    assert inputs[ir.signature.h_inputs[0]]["quantization"] == (0.0078125, 0)
    assert details[int(tanh["outputs"][0])]["quantization"] == (0.0078125, 0)
    _assert_fc_matches(layer.input_fc, next(op for op in cell if op["inputs"][0] == x_idx),
                       it, details)
    _assert_fc_matches(layer.recurrent_fc, next(op for op in cell if op["inputs"][0] == h_idx),
                       it, details)
    _assert_fc_matches(ir.head.fc, head[0], it, details)
    z = details[int(add["outputs"][0])]["quantization"]
    assert (layer.add.output.scale, layer.add.output.zero_point) == z


def test_text_model_embedding_is_quantized_with_x_parameters():
    model = random_step_tflite(8, 8, 11, task="language_model", vocab_size=11, x_range=3.0)
    ir = read_ir(model)
    assert ir.task == "language_model"
    assert ir.embedding.shape == (11, 8) and ir.embedding.dtype == np.int8
    assert ir.labels == tuple(f"t{i}" for i in range(11))
    # the table was built to span [-x_range, x_range] exactly, like x's calibration
    # (with zero point -1, +3.0 lands on 126.5 - epsilon, -3.0 on -128.5 + epsilon -> -128)
    lo, hi = ir.input_quant.dequantize(np.array([ir.embedding.min(), ir.embedding.max()]))
    assert lo == pytest.approx(-3.0, abs=ir.input_quant.scale)
    assert hi == pytest.approx(3.0, abs=ir.input_quant.scale)


def test_json_round_trip_is_identical():
    for model in (random_step_tflite(6, 16, 4),
                  random_step_tflite(8, 8, 11, task="language_model", vocab_size=11,
                                     x_range=3.0)):
        ir = read_ir(model)
        again = QuantizedModel.from_json(ir.to_json())
        assert again == ir
        assert again.to_json() == ir.to_json()
        np.testing.assert_array_equal(again.layers[0].input_fc.weights,
                                      ir.layers[0].input_fc.weights)


def test_read_from_path_and_bytes_agree(tmp_path):
    model = random_step_tflite(6, 16, 4)
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    assert read_ir(path) == read_ir(model)
    assert read_ir(str(path)).source_sha256 == read_ir(model).source_sha256


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[: len(b) // 2], "corrupt or truncated"),
        (lambda b: b[:6], "only 6 bytes"),
        (lambda b: np.random.default_rng(0).bytes(4000), "not a TFLite model"),
        (lambda b: b"", "only 0 bytes"),
    ],
)
def test_corrupt_bytes_are_refused(mutate, message):
    with pytest.raises(ModelError, match=message):
        read_ir(mutate(random_step_tflite(6, 16, 4)))


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        read_ir(tmp_path / "nope.tflite")


@pytest.mark.parametrize("layer_units", [(7, 5), (4, 9, 6)])
def test_stacked_layers_are_read_by_structure(layer_units):
    """An L-layer step model converted by TF: every layer found by structure (layer l's
    FC(x) reads layer l-1's TANH output), in order, with the tensors LiteRT sees."""
    model = stacked_step_tflite(3, layer_units, 4, seed=len(layer_units), head_steps="every",
                                window_steps=0)
    ir = read_ir(model)
    assert ir.layer_units == layer_units and ir.input_dim == 3 and ir.output_dim == 4
    assert ir.state_bytes == sum(layer_units) and ir.head.every_step
    it = Interpreter(model_content=model)
    it.allocate_tensors()
    details = {d["index"]: d for d in it.get_tensor_details()}
    ops = it._get_ops_details()
    inputs, outputs = it.get_input_details(), it.get_output_details()
    tanh_of = {int(op["inputs"][0]): op for op in ops if op["op_name"] == "TANH"}
    reads = inputs[ir.signature.x_input]["index"]
    for i, layer in enumerate(ir.layers):
        h_in = inputs[ir.signature.h_inputs[i]]["index"]
        assert inputs[ir.signature.h_inputs[i]]["quantization"] == (0.0078125, 0)
        in_op = next(op for op in ops if op["op_name"] == "FULLY_CONNECTED"
                     and int(op["inputs"][0]) == reads)
        rec_op = next(op for op in ops if op["op_name"] == "FULLY_CONNECTED"
                      and int(op["inputs"][0]) == h_in)
        _assert_fc_matches(layer.input_fc, in_op, it, details)
        _assert_fc_matches(layer.recurrent_fc, rec_op, it, details)
        add = next(op for op in ops if op["op_name"] == "ADD"
                   and set(map(int, op["inputs"])) == {int(in_op["outputs"][0]),
                                                       int(rec_op["outputs"][0])})
        tanh = tanh_of[int(add["outputs"][0])]
        assert outputs[ir.signature.h_outputs[i]]["index"] == int(tanh["outputs"][0])
        assert layer.input_quant == (ir.input_quant if i == 0 else ir.state_quant)
        reads = int(tanh["outputs"][0])  # the next layer's input
    head = next(op for op in ops if op["op_name"] == "FULLY_CONNECTED"
                and int(op["inputs"][0]) == reads)
    _assert_fc_matches(ir.head.fc, head, it, details)
    assert outputs[ir.signature.y_output]["index"] == int(head["outputs"][0])
    again = QuantizedModel.from_json(ir.to_json())
    assert again == ir and again.layer_units == layer_units


def test_json_of_an_older_format_is_refused():
    d = read_ir(random_step_tflite(6, 16, 4)).to_dict()
    d["format_version"] = 1
    with pytest.raises(ValueError, match="format version 1"):
        QuantizedModel.from_dict(d)
