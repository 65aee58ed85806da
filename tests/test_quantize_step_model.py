"""The step model's conversion: child process, crash path, pinned state, refused files."""

import numpy as np
import pytest
from elman.quantize.converter_child import build_and_convert
from elman.quantize.float_model import ElmanLayer, FloatElman
from elman.quantize.metadata import METADATA_NAME
from elman.quantize.reader import read_ir, read_step_graph
from elman.quantize.step_model import (
    CRASH_ENV,
    convert_step_model,
    job_arrays,
    pinned_calibration,
)
from elman.quantize.testing import random_step_tflite, random_step_weights

from elman.errors import ModelError


def _calibration(weights: FloatElman, n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, weights.input_dim)).astype(np.float32)
    h = [np.tanh(rng.normal(size=(n, u))).astype(np.float32) for u in weights.units]
    return x, h


def test_converter_crash_in_child_becomes_model_error(monkeypatch):
    weights = random_step_weights(3, 4, 2)
    x, h = _calibration(weights)
    monkeypatch.setenv(CRASH_ENV, "SIGSEGV")
    with pytest.raises(ModelError, match=r"converter crashed \(SIGSEGV\)"):
        convert_step_model(weights, x, h, task="classification")


def test_converter_abort_in_child_names_the_signal(monkeypatch):
    weights = random_step_weights(3, 4, 2)
    x, h = _calibration(weights)
    monkeypatch.setenv(CRASH_ENV, "SIGABRT")
    with pytest.raises(ModelError, match=r"converter crashed \(SIGABRT\)"):
        convert_step_model(weights, x, h, task="classification")


def test_pinned_calibration_spans_the_state_range_exactly():
    x = np.zeros((3, 2), np.float32)
    h = np.array([[0.5, -2.0], [1.5, 0.1], [0.0, 0.0]], np.float32)
    cx, (ch, ch2) = pinned_calibration(x, [h, h[:, ::-1]])
    assert ch.min() == ch2.min() == -1.0 and ch.max() == ch2.max() == 127 / 128
    assert len(cx) == len(ch) == len(ch2) == 5
    np.testing.assert_array_equal(ch[:3], np.float32([[0.5, -1.0], [127 / 128, 0.1], [0, 0]]))
    np.testing.assert_array_equal(ch2[:3], np.float32([[-1.0, 0.5], [0.1, 127 / 128], [0, 0]]))


def test_real_conversion_pins_state_and_is_deterministic():
    weights = random_step_weights(5, 12, 3, seed=7)
    x, h = _calibration(weights, seed=7)
    a = convert_step_model(weights, x, h, task="classification", labels=["a", "b", "c"])
    b = convert_step_model(weights, x, h, task="classification", labels=["a", "b", "c"])
    assert a == b
    ir = read_ir(a)
    assert (ir.state_quant.scale, ir.state_quant.zero_point) == (1 / 128, 0)
    (layer,) = ir.layers
    assert (layer.tanh.output.scale, layer.tanh.output.zero_point) == (1 / 128, 0)
    assert ir.labels == ("a", "b", "c")
    # per-channel: one scale per output channel, and they are not all equal
    assert layer.input_fc.weight_scales.shape == (12,)
    assert len(set(layer.input_fc.weight_scales.tolist())) > 1
    # every channel uses its full int8 range (symmetric per-channel quantization)
    np.testing.assert_array_equal(np.abs(layer.recurrent_fc.weights.astype(int)).max(axis=1), 127)


def test_unpinned_state_is_refused_loudly():
    """States calibrated on [-0.5, 0.5] give h another scale: the reader says why that fails."""
    weights = random_step_weights(3, 6, 2)
    x, h = _calibration(weights)
    arrays = {**job_arrays(weights), "calibration_x": x,
              "calibration_h1": np.clip(h[0], -0.5, 0.5)}
    model = build_and_convert(arrays)
    with pytest.raises(ModelError, match=r"cannot feed back as h_\(t-1\)"):
        read_step_graph(model)


def test_calibration_shape_errors_are_clear():
    weights = random_step_weights(3, 4, 2)
    with pytest.raises(ModelError, match=r"calibration inputs must be \(N, 3\)"):
        convert_step_model(weights, np.zeros((5, 2)), [np.zeros((5, 4))],
                           task="classification")
    with pytest.raises(ModelError, match="NaN or infinity"):
        convert_step_model(weights, np.full((5, 3), np.nan), [np.zeros((5, 4))],
                           task="classification")
    with pytest.raises(ModelError, match=r"one state array per layer \(1\), got 2"):
        convert_step_model(weights, np.zeros((5, 3)), [np.zeros((5, 4))] * 2,
                           task="classification")


def _strip_metadata(model: bytes) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    obj = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    obj.metadata = [m for m in obj.metadata if not m.name.decode().startswith(METADATA_NAME)]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(obj))


def test_model_without_elman_metadata_is_refused():
    stripped = _strip_metadata(random_step_tflite(6, 16, 4))
    assert read_step_graph(stripped).layers[0].input_dim == 6  # the graph itself is fine
    with pytest.raises(ModelError, match="no 'elman' metadata entry"):
        read_ir(stripped)


def tiny_conv_tflite() -> bytes:
    """A valid int8 .tflite that is not an elman step model."""
    import tensorflow as tf

    class Conv(tf.Module):
        def __init__(self):
            self.k = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 1, 2)),
                                 tf.float32)

        @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 1], tf.float32)])
        def __call__(self, x):
            return tf.nn.relu(tf.nn.conv2d(x, self.k, 1, "SAME"))

    m = Conv()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([m.__call__.get_concrete_function()],
                                                           m)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: (
        [np.random.default_rng(i).normal(size=(1, 8, 8, 1)).astype(np.float32)]
        for i in range(8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return bytes(conv.convert())


def test_valid_tflite_that_is_not_a_step_model_is_refused():
    with pytest.raises(ModelError, match="operators an elman step model does not: CONV_2D"):
        read_ir(tiny_conv_tflite())


def test_float_step_model_is_refused_with_every_problem():
    import tensorflow as tf

    w = random_step_weights(3, 4, 2)
    cell = w.layers[0]

    class Step(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 3], tf.float32),
                                      tf.TensorSpec([1, 4], tf.float32)])
        def step(self, x, h):
            h2 = tf.tanh(tf.matmul(x, cell.kernel) + cell.bias
                         + tf.matmul(h, cell.recurrent_kernel))
            return h2, tf.matmul(h2, w.head_kernel) + w.head_bias

    m = Step()
    model = tf.lite.TFLiteConverter.from_concrete_functions(
        [m.step.get_concrete_function()], m).convert()
    with pytest.raises(ModelError) as err:
        read_ir(model)
    text = str(err.value)
    assert "FC(x) weights are FLOAT32, expected INT8" in text
    assert "FC(h) weights are FLOAT32, expected INT8" in text
    assert "the ADD output is FLOAT32, expected INT8" in text


def test_zero_biases_square_cell_still_converts_and_reads():
    """All-zero biases are folded away by the converter (no bias on either FC) and x has
    as many features as h: FC(h) is still told apart, by its pinned input."""
    w = random_step_weights(8, 8, 3)
    cell = w.layers[0]
    w = FloatElman((ElmanLayer(cell.kernel, cell.recurrent_kernel, np.zeros(8, np.float32)),),
                   w.head_kernel, np.zeros(3, np.float32))
    x, h = _calibration(w)
    ir = read_ir(convert_step_model(w, x * 3, h, task="classification"))
    (layer,) = ir.layers
    assert not layer.input_fc.has_bias and not layer.recurrent_fc.has_bias
    assert (ir.state_quant.scale, ir.state_quant.zero_point) == (1 / 128, 0)
    assert ir.input_quant.scale > 2 / 128  # x (range +-3) was not taken for the state
    # the recurrent weights are W_h (per-channel symmetric: max |q| = 127 in every row)
    expected = cell.recurrent_kernel.T / layer.recurrent_fc.weight_scales[:, None]
    np.testing.assert_array_equal(layer.recurrent_fc.weights, np.round(expected).astype(np.int8))
