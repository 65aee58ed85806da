"""Profile ``tflite``: bit-exact with LiteRT's reference kernels (``BUILTIN_REF``).

Measured on LiteRT 2.3 with models whose scales force exact and near rounding ties:

- ``QuantizeMultiplier`` of the single-rounding build: a shift above 30 saturates to
  ``(2**31 - 1, 30)``;
- FULLY_CONNECTED requantizes in double precision,
  ``std::round(double(acc) * (s_in * s_w / s_out))`` (``requantize_double``; not the
  quantized multiplier); without the scales the multiplier rounded once, ties away
  from zero, equals it except within ~2**-31 (relative) of a half-integer;
- ADD: the same gemmlowp double rounding as TFLM (``AddRescale``);
- TANH: a 256-entry table filled from float ``tanhf`` and ``std::round``
  (``kernels/activations.cc``, ``PopulateLookupTable``).

16x8 (int16 activations): FULLY_CONNECTED requantizes its int64 accumulators in double
precision too (``requantize_double_bits``); ADD (general scales, left shift 15) and
TANH (the interpolated sigmoid table, ``primitives.tanh_int16``) are TFLite Micro's.
"""

from __future__ import annotations

import math

import numpy as np
from elman.profiles import primitives as P
from elman.profiles.base import Profile
from elman.quantize.ir import QuantParams


class TfliteProfile(Profile):
    name = "tflite"
    title = "TFLite reference-kernel rounding"
    reference = "LiteRT's BUILTIN_REF kernels"
    compiled_requantization = "tflite"

    def quantize_multiplier(self, real_multiplier: float) -> tuple[int, int]:
        m, s = P.quantize_multiplier(real_multiplier)
        if s > 30:
            m, s = P.INT32_MAX, 30
        return m, s

    def multiply(self, x, multiplier, shift) -> np.ndarray:
        return P.multiply_by_quantized_multiplier_single(x, multiplier, shift)

    def requantize(self, acc, multipliers, shifts, output_zero_point, scales=None) -> np.ndarray:
        if scales is not None:
            return P.requantize_double(P.wrap_int32(acc), scales, output_zero_point)
        scaled = self.multiply(P.wrap_int32(acc), multipliers, shifts)
        return P.saturate_int8(scaled + output_zero_point)

    def tanh_table(self, input_q: QuantParams) -> np.ndarray:
        return P.tanh_table_tflite(float(input_q.scale), int(input_q.zero_point))

    def requantize16(self, acc, multipliers, shifts, scales) -> np.ndarray:
        return P.requantize_double_bits(acc, scales, 0, 16)


PROFILE = TfliteProfile()


def double_parts(scales: np.ndarray) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The C form of LiteRT's float64 scales (the generated ``requantize_s8`` of this
    profile): each scale as ``{top, low}``, the high 32 and low 21 bits of its 53-bit
    mantissa, and a shift, ``scale = (top + low / 2**21) / 2**shift``; all 0 for scales below
    2**-95 (``|acc| * scale < 2**-64`` rounds to 0 anyway). ValueError for one too large."""
    parts, shifts = [], []
    for s in np.asarray(scales, dtype=np.float64):
        fraction, exp = math.frexp(float(s))
        mantissa, shift = int(fraction * 2**53), 53 - exp - 21
        if mantissa == 0 or shift > 127:
            mantissa, shift = 0, 0
        if shift < -128:
            raise ValueError(f"requantization scale {float(s):g} is too large")
        parts.append((mantissa >> 21, mantissa & 0x1FFFFF))
        shifts.append(shift)
    return parts, np.array(shifts, dtype=np.int64)
