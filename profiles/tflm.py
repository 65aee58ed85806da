"""Profile ``tflm``: bit-exact with the TFLite Micro interpreter (and CMSIS-NN's rounding).

- ``QuantizeMultiplier`` as in ``quantization_util.cc`` (no saturation of large shifts);
- FULLY_CONNECTED's ``MultiplyByQuantizedMultiplier``: gemmlowp "double rounding",
  ``SaturatingRoundingDoublingHighMul`` then ``RoundingDivideByPOT`` (the left shift
  of a multiplier of one or more wraps like TFLM's int32 C++);
- TANH: gemmlowp's fixed-point ``tanh`` (``micro/kernels/tanh_common.cc``)
  evaluated for every int8 input.

16x8 (int16 activations): FULLY_CONNECTED accumulates in int64 and requantizes with
the int64 ``MultiplyByQuantizedMultiplier`` (the multiplier reduced to 16 bits, one
rounding, ties toward +infinity); ADD and TANH are the kernels LiteRT runs too
(``Profile.add``, ``primitives.tanh_int16``). Measured: this FULLY_CONNECTED is the
one op where the two interpreters differ on int16.
"""

from __future__ import annotations

import numpy as np
from elman.profiles import primitives as P
from elman.profiles.base import Profile
from elman.quantize.ir import QuantParams


class TflmProfile(Profile):
    name = "tflm"
    title = "TFLite Micro / CMSIS-NN rounding"
    reference = "the TFLite Micro interpreter"
    compiled_requantization = "tflm"

    def quantize_multiplier(self, real_multiplier: float) -> tuple[int, int]:
        return P.quantize_multiplier(real_multiplier)

    def multiply(self, x, multiplier, shift) -> np.ndarray:
        return P.multiply_by_quantized_multiplier_double(x, multiplier, shift)

    def requantize(self, acc, multipliers, shifts, output_zero_point, scales=None) -> np.ndarray:
        scaled = self.multiply(P.wrap_int32(acc), multipliers, shifts)
        return P.saturate_int8(scaled + output_zero_point)

    def tanh_table(self, input_q: QuantParams) -> np.ndarray:
        return P.tanh_table_tflm(float(input_q.scale), int(input_q.zero_point))

    def requantize16(self, acc, multipliers, shifts, scales) -> np.ndarray:
        return P.saturate(P.multiply_by_quantized_multiplier_int64(acc, multipliers, shifts), 16)


PROFILE = TflmProfile()
