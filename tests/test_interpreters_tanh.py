"""The TANH tables of both profiles against the interpreters, for every int8 input.

TANH-only models (real TF conversion, int8 in and out) calibrated on ranges from
1e-2 to 50, symmetric and one-sided (zero points from -128 to 127); all 256
input values go through LiteRT ``BUILTIN_REF`` and TFLite Micro.
"""

from __future__ import annotations

import numpy as np
import pytest
from elman.profiles.primitives import tanh_table_tflite, tanh_table_tflm

RANGES = [(-0.01, 0.01), (-1.0, 1.0), (-3.2, 3.2), (-50.0, 50.0), (-0.3, 7.0), (-12.0, 0.05),
          (0.0, 4.0), (-2.5, 0.0), (-0.07, 0.2), (-17.0, 30.0)]


def _tanh_model(lo: float, hi: float) -> bytes:
    import tensorflow as tf

    inp = tf.keras.Input((256,))
    model = tf.keras.Model(inp, tf.keras.layers.Activation("tanh")(inp))
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(4):
            yield [rng.uniform(lo, hi, (1, 256)).astype(np.float32)]
        yield [np.linspace(lo, hi, 256, dtype=np.float32)[None]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    return conv.convert()


@pytest.mark.slow
def test_tanh_tables_equal_both_interpreters_on_all_256_inputs():
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from tflite_micro.python.tflite_micro import runtime as tflm

    q = np.arange(-128, 128, dtype=np.int8)[None]
    for lo, hi in RANGES:
        model = _tanh_model(lo, hi)
        lite = Interpreter(model_content=model,
                           experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        lite.allocate_tensors()
        detail = lite.get_input_details()[0]
        scale, zero_point = detail["quantization"]
        lite.set_tensor(detail["index"], q)
        lite.invoke()
        micro = tflm.Interpreter.from_bytes(model)
        micro.set_input(q, 0)
        micro.invoke()
        np.testing.assert_array_equal(
            tanh_table_tflite(scale, zero_point),
            lite.get_tensor(lite.get_output_details()[0]["index"])[0])
        np.testing.assert_array_equal(tanh_table_tflm(scale, zero_point), micro.get_output(0)[0])
