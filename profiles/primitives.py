"""Fixed-point primitives of the integer program, written once, vectorized in numpy.

Every function here reproduces one routine of the TFLite / TFLite Micro kernels
to the bit, with int32 values carried in numpy ``int64`` arrays (so products of
two int32 values never overflow) and ``wrap_int32`` where C wraps. Which routine
an interpreter uses is a profile's choice (``elman.profiles.tflm``,
``elman.profiles.tflite``); nothing here depends on a profile.

Sources: ``tensorflow/lite/kernels/internal/common.{h,cc}``,
``quantization_util.cc``, ``reference/integer_ops/{fully_connected,add,tanh}.h``,
``kernels/activations.cc`` (``PopulateLookupTable``), ``micro/kernels/tanh_common.cc``
and gemmlowp ``fixedpoint/fixedpoint.h``.
"""

from __future__ import annotations

import math

import numpy as np
from elman.quantize.ir import round_half_away_exact

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INT8_MIN = -128
INT8_MAX = 127


def round_half_away(x: float) -> int:
    """``std::round``: ties away from zero (Python's ``round`` ties to even)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: ``real ~= multiplier * 2**(shift - 31)``.

    Returns ``(multiplier, shift)`` with ``multiplier`` in ``[2**30, 2**31 - 1]``
    (or 0) and ``shift`` the signed left shift. Derived in double precision,
    exactly as ``tensorflow/lite/kernels/internal/quantization_util.cc``:
    ``frexp``, ``round(q * 2**31)`` with ties away from zero, the
    ``q_fixed == 2**31`` carry, and flushing to zero below ``2**-31``.
    """
    if real_multiplier == 0.0:
        return 0, 0
    if real_multiplier < 0 or not math.isfinite(real_multiplier):
        raise ValueError(f"multiplier must be finite and non-negative, got {real_multiplier!r}")
    q, shift = math.frexp(real_multiplier)
    q_fixed = round_half_away(q * (1 << 31))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    return int(q_fixed), int(shift)


# ---- integer helpers -------------------------------------------------------------------


def wrap_int32(x: np.ndarray | int) -> np.ndarray:
    """Two's-complement wrap of int64 values to int32 range (what the C int32 does)."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturate_int8(x: np.ndarray) -> np.ndarray:
    return np.clip(x, INT8_MIN, INT8_MAX).astype(np.int8)


def _trunc_div_pow2(x: np.ndarray, bits: int) -> np.ndarray:
    """C integer division by ``2**bits`` (rounds toward zero)."""
    return np.where(x >= 0, x >> bits, -((-x) >> bits))


def saturating_rounding_doubling_high_mul(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` (ARM ``VQRDMULH``) on int32 values."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    overflow = (a == b) & (a == INT32_MIN)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = _trunc_div_pow2(ab + nudge, 31)
    return np.where(overflow, INT32_MAX, high).astype(np.int64)


def rounding_divide_by_pot(x: np.ndarray | int, exponent: np.ndarray | int) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT``: round to nearest, ties away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    if np.any((exponent < 0) | (exponent > 31)):
        raise ValueError("RoundingDivideByPOT exponent must be in [0, 31]")
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier_double(
    x: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int
) -> np.ndarray:
    """TFLM / gemmlowp double rounding: ``RoundingDivideByPOT(SRDHM(x << left, m), right)``."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = wrap_int32(x * (np.int64(1) << left))
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def multiply_by_quantized_multiplier_single(
    x: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int
) -> np.ndarray:
    """``round(x * m / 2**(31 - shift))`` in one step, ties away from zero, exactly in
    64-bit integers: the integer form of LiteRT's double-precision requantization
    (``requantize_double``), equal to it wherever ``m * 2**(shift - 31)`` is the
    real scale (exact ties included; measured with power-of-two multipliers, where
    ``TFLITE_SINGLE_ROUNDING``'s ties toward +infinity disagree with LiteRT).
    """
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if np.any((shift < -31) | (shift > 30)):
        raise ValueError("single-rounding shift must be in [-31, 30]")
    total_shift = 31 - shift
    nudge = np.int64(1) << (total_shift - 1)
    magnitude = (np.abs(x) * np.asarray(multiplier, dtype=np.int64) + nudge) >> total_shift
    return wrap_int32(np.where(x < 0, -magnitude, magnitude))


def multiply_by_quantized_multiplier_smaller_than_one(
    x: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int
) -> np.ndarray:
    """``MultiplyByQuantizedMultiplierSmallerThanOneExp`` (``shift <= 0``), used by ADD.

    gemmlowp double rounding in both profiles: TFLM's, and measured for LiteRT's
    reference ADD too (a single rounding, with ties either way, disagrees with it
    on inputs whose scales put the sum next to a half-integer).
    """
    shift = np.asarray(shift, dtype=np.int64)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -shift)


def requantize_double(acc: np.ndarray, scales: np.ndarray, output_zero_point: int) -> np.ndarray:
    """LiteRT's reference FULLY_CONNECTED epilogue: ``std::round(double(acc) * scale[c])``,
    plus the output zero point, saturated to int8. ``scales`` are the float64
    ``s_in * s_w[c] / s_out`` (``FullyConnected.effective_scales``)."""
    v = np.asarray(acc, dtype=np.float64) * np.asarray(scales, dtype=np.float64)
    return saturate_int8(np.clip(round_half_away_exact(v), -1024, 1024).astype(np.int64)
                         + output_zero_point)


def add_rescale(
    a: np.ndarray,
    r: np.ndarray,
    *,
    a_zero_point: int,
    r_zero_point: int,
    output_zero_point: int,
    left_shift: int,
    a_multiplier: tuple[int, int],
    r_multiplier: tuple[int, int],
    output_multiplier: tuple[int, int],
) -> np.ndarray:
    """int8 ADD, TFLite's two-stage rescale (``reference_integer_ops::Add``).

    Each input, offset by its zero point and shifted left by ``left_shift``, is
    scaled to the common scale ``2 * max(s_a, s_r)``; the sum is scaled to the
    output, offset and saturated. The multipliers are ``(multiplier, shift)``.
    """
    a32 = wrap_int32((np.asarray(a, np.int64) - a_zero_point) << left_shift)
    r32 = wrap_int32((np.asarray(r, np.int64) - r_zero_point) << left_shift)
    sa = multiply_by_quantized_multiplier_smaller_than_one(a32, *a_multiplier)
    sr = multiply_by_quantized_multiplier_smaller_than_one(r32, *r_multiplier)
    raw_sum = wrap_int32(sa + sr)
    out = multiply_by_quantized_multiplier_smaller_than_one(raw_sum, *output_multiplier)
    return saturate_int8(out + output_zero_point)


def tanh_table_tflite(input_scale: float, input_zero_point: int) -> np.ndarray:
    """LiteRT ``PopulateLookupTable``: float32 ``tanhf(s * (q - zp)) * 128``, ``std::round``."""
    q = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.int64)
    dequantized = np.float32(input_scale) * (q - input_zero_point).astype(np.float32)
    # tanh in double, rounded once to float32: the correctly rounded tanhf.
    transformed = np.tanh(dequantized.astype(np.float64)).astype(np.float32)
    scaled = (transformed * np.float32(128.0)).astype(np.float64)
    rescaled = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    return saturate_int8(rescaled.astype(np.int64))


# gemmlowp fixed-point tanh (FixedPoint<int32_t, 4> in, FixedPoint<int32_t, 0> out).
_TANH_INPUT_INTEGER_BITS = 4


def tflm_tanh_input_params(input_scale: float) -> tuple[int, int, int]:
    """TFLM ``CalculateArithmeticOpDataTanh``: ``(input_multiplier, input_left_shift,
    input_range_radius)`` for an int8 input of scale ``input_scale``."""
    real = float(input_scale) * float(1 << (31 - _TANH_INPUT_INTEGER_BITS))
    q, left_shift = math.frexp(real)
    multiplier = round_half_away(q * (1 << 31))
    multiplier = int(wrap_int32(multiplier))  # static_cast<int32_t>, no carry handling
    max_input_rescaled = (
        1.0 * ((1 << _TANH_INPUT_INTEGER_BITS) - 1)
        * float(1 << (31 - _TANH_INPUT_INTEGER_BITS)) / float(2.0**left_shift)
    )
    radius = math.floor(max_input_rescaled)
    return multiplier, left_shift, radius


def _srdhm(a: int, b: int) -> int:
    return int(saturating_rounding_doubling_high_mul(a, b))


def _rdbpot(x: int, e: int) -> int:
    return int(rounding_divide_by_pot(x, e))


def _w(x: int) -> int:
    return int(wrap_int32(x))


def _sat_mul_pot(x: int, exponent: int) -> int:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT<exponent>`` on int32."""
    if exponent == 0:
        return x
    if exponent < 0:
        return _rdbpot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return _w(x << exponent)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    """Q0.31 in and out."""
    constant_term = 1895147668
    constant_1_over_3 = 715827883
    x = _w(a + (1 << 28))
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    x4_over_4 = _sat_mul_pot(x4, -2)
    poly = _sat_mul_pot(_w(_srdhm(_w(x4_over_4 + x3), constant_1_over_3) + x2), -1)
    return _w(constant_term + _srdhm(constant_term, _w(x + poly)))


def _exp_on_negative_values(a: int, integer_bits: int) -> int:
    """gemmlowp ``exp_on_negative_values`` for a Q``integer_bits`` input, Q0.31 out."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = _w((a & mask) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        _sat_mul_pot(a_mod_quarter_minus_one_quarter, integer_bits))  # Rescale<0>
    remainder = _w(a_mod_quarter_minus_one_quarter - a)
    barrel = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
              (2, 39332535), (3, 720401), (4, 242))
    for exponent, multiplier in barrel:
        if integer_bits > exponent:
            shift_amount = fractional_bits + exponent
            if remainder & (1 << shift_amount):
                result = _srdhm(result, multiplier)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        if a < clamp:
            result = 0
    if a == 0:
        result = INT32_MAX
    return result


def _rounding_half_sum(a: int, b: int) -> int:
    """gemmlowp ``RoundingHalfSum``: ``(a + b + sign) / 2`` with C truncation."""
    s = a + b
    return (s + 1) // 2 if s >= 0 else -((1 - s) // 2)


def _one_minus_x_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    """Q0.31 in and out; Newton-Raphson division in Q2.29."""
    one_q0 = INT32_MAX
    half_denominator = _rounding_half_sum(a, one_q0)
    constant_48_over_17 = 1515870810
    constant_neg_32_over_17 = -1010580540
    one_q2 = 1 << 29
    x = _w(constant_48_over_17 + _srdhm(half_denominator, constant_neg_32_over_17))
    for _ in range(3):
        half_denominator_times_x = _srdhm(half_denominator, x)
        one_minus = _w(one_q2 - half_denominator_times_x)
        x = _w(x + _sat_mul_pot(_srdhm(x, one_minus), 2))
    return _sat_mul_pot(_w(x - one_q2), 2)


def gemmlowp_tanh(a: int, integer_bits: int = _TANH_INPUT_INTEGER_BITS) -> int:
    """gemmlowp ``tanh(FixedPoint<int32_t, integer_bits>)``: raw Q0.31 result."""
    if a == 0:
        return 0
    n = a if a < 0 else _w(-a)
    # neg_tanh_on_negative_values: ExactMulByPot<1> only relabels the format.
    t = _one_minus_x_over_one_plus_x_for_x_in_0_1(_exp_on_negative_values(n, integer_bits + 1))
    return _w(-t) if a < 0 else t


def tanh_table_tflm(input_scale: float, input_zero_point: int) -> np.ndarray:
    """TFLM ``reference_integer_ops::Tanh`` evaluated for every int8 input."""
    multiplier, left_shift, radius = tflm_tanh_input_params(input_scale)
    table = np.empty(256, dtype=np.int8)
    for i, q in enumerate(range(INT8_MIN, INT8_MAX + 1)):
        v = q - input_zero_point
        if v <= -radius:
            out = INT8_MIN
        elif v >= radius:
            out = INT8_MAX
        else:
            input_in_q4 = int(multiply_by_quantized_multiplier_double(v, multiplier, left_shift))
            out = _rdbpot(gemmlowp_tanh(input_in_q4), 31 - 7)
            out = min(max(out, INT8_MIN), INT8_MAX)
        table[i] = out
    return table


# ---- 16x8: int16 activations, int8 weights, int64 accumulators ---------------------------
INT16_MIN = -(2**15)
INT16_MAX = 2**15 - 1


def saturate(x: np.ndarray, bits: int) -> np.ndarray:
    """Saturate to int8 (``bits`` 8) or int16 (16), as that dtype."""
    if bits == 8:
        return saturate_int8(x)
    return np.clip(x, INT16_MIN, INT16_MAX).astype(np.int16)


def multiply_by_quantized_multiplier_int64(
    x: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int
) -> np.ndarray:
    """``MultiplyByQuantizedMultiplier(int64_t x, ...)`` (``common.cc``), what TFLite
    Micro's int16 FULLY_CONNECTED uses on its int64 accumulators: the multiplier reduced
    to 16 bits (``(m + 2**15) >> 16``, at most ``0x7FFF``), then one rounding,
    ``(x * reduced + 2**(total - 1)) >> total`` with ``total = 15 - shift``
    (an arithmetic shift: ties toward +infinity), kept as the int32 it returns."""
    x = np.asarray(x, dtype=np.int64)
    m = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if np.any((shift < -31) | (shift >= 8)):
        raise ValueError("int64 MultiplyByQuantizedMultiplier shift must be in [-31, 8)")
    if np.any(np.abs(x) >= (np.int64(1) << 47)):
        raise ValueError("int64 MultiplyByQuantizedMultiplier input must be below 2**47")
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - shift
    return wrap_int32((x * reduced + (np.int64(1) << (total - 1))) >> total)


def requantize_double_bits(acc: np.ndarray, scales: np.ndarray, output_zero_point: int,
                           bits: int) -> np.ndarray:
    """``requantize_double`` saturated to ``bits`` bits: LiteRT's reference
    FULLY_CONNECTED epilogue on int8 or int16 outputs (``std::round(double(acc) *
    scale)``; int64 accumulators below 2**53 are exact doubles)."""
    v = np.asarray(acc, dtype=np.float64) * np.asarray(scales, dtype=np.float64)
    limit = 4 << bits
    return saturate(np.clip(round_half_away_exact(v), -limit, limit).astype(np.int64)
                    + output_zero_point, bits)


def tanh_int16_params(input_scale: float) -> tuple[int, int]:
    """``(input_multiplier, input_left_shift)`` of the int16 TANH (``TanhPrepare`` in
    LiteRT's ``activations.cc`` and TFLite Micro's ``tanh.cc``, identical): a scale
    within 1e-3 (in log2) of 2**-12 or 2**-11 (``CheckedLog2``) keeps the shift
    (multiplier 0, the power-of-two case); else the multiplier of ``scale * 4096 * 3``
    doubled until above 32767/2, truncated."""
    s = float(input_scale)
    log = math.log2(s)
    rounded = round_half_away(log)
    left_shift = (15 - 3) + rounded
    if abs(log - rounded) < 1e-3 and left_shift in (0, 1):
        return 0, left_shift
    multiplier = s * 4096.0 * 3.0
    left_shift = 0
    while multiplier <= 32767.0 / 2.0 and left_shift <= 30:
        left_shift += 1
        multiplier *= 2.0
    return int(multiplier), left_shift


def tanh_int16(z: np.ndarray, input_scale: float) -> np.ndarray:
    """``reference_integer_ops::Tanh`` on int16 inputs (LiteRT and TFLite Micro run the
    same code): the input rescaled to 1/(3 * 4096) units, then ``tanh(x) = 2 *
    sigmoid(2x) - 1`` interpolated in the 256-entry sigmoid table; output (1/32768, 0)."""
    from elman.profiles.sigmoid_table import SIGMOID_TABLE_UINT16 as table

    multiplier, left_shift = tanh_int16_params(input_scale)
    if multiplier == 0:
        multiplier, left_shift = 3 << left_shift, 0
    rounding = (1 << (left_shift - 1)) if left_shift > 0 else 0
    v = wrap_int32(np.asarray(z, dtype=np.int64) * multiplier + rounding) >> left_shift
    magnitude = np.abs(v)
    index = magnitude >> 8
    below = np.minimum(index, 254)
    ua, ub = table[below], table[below + 1]
    interpolated = (ua << 8) + (magnitude & 0xFF) * (ub - ua)
    result = np.where(index >= 255, 0xFFFF << 8, interpolated)
    result = np.where(v >= 0, result - (1 << 23) + (1 << 7), -result + (1 << 23) + (1 << 7) - 1)
    return (result >> 8).astype(np.int16)


def add_rescale_int16(a: np.ndarray, r: np.ndarray, *, left_shift: int,
                      a_multiplier: tuple[int, int], r_multiplier: tuple[int, int],
                      output_multiplier: tuple[int, int]) -> np.ndarray:
    """int16 ADD, general scales (``AddGeneralParamScale``, both interpreters): the int8
    two-stage rescale with left shift 15, zero points 0, saturated to int16."""
    a32 = wrap_int32(np.asarray(a, np.int64) << left_shift)
    r32 = wrap_int32(np.asarray(r, np.int64) << left_shift)
    sa = multiply_by_quantized_multiplier_smaller_than_one(a32, *a_multiplier)
    sr = multiply_by_quantized_multiplier_smaller_than_one(r32, *r_multiplier)
    out = multiply_by_quantized_multiplier_smaller_than_one(wrap_int32(sa + sr),
                                                             *output_multiplier)
    return saturate(out, 16)
