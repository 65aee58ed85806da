"""Edge cases of the fixed-point primitives, against exact rational arithmetic."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from elman.profiles import PROFILE_NAMES, get_profile
from elman.profiles import primitives as P
from elman.quantize.ir import QuantParams
from hypothesis import given, settings
from hypothesis import strategies as st

INT32 = st.integers(P.INT32_MIN, P.INT32_MAX)
MULTIPLIER = st.integers(1 << 30, P.INT32_MAX)


def exact_half_away(v: Fraction) -> int:
    """Round a rational to the nearest integer, ties away from zero."""
    f = math.floor(abs(v) + Fraction(1, 2))
    return f if v >= 0 else -f


def exact_half_up(v: Fraction) -> int:
    """Round a rational to the nearest integer, ties toward +infinity."""
    return math.floor(v + Fraction(1, 2))


# ---- SaturatingRoundingDoublingHighMul ------------------------------------------------


def test_srdhm_saturates_only_min_times_min():
    assert P.saturating_rounding_doubling_high_mul(P.INT32_MIN, P.INT32_MIN) == P.INT32_MAX
    assert P.saturating_rounding_doubling_high_mul(P.INT32_MIN, P.INT32_MAX) == -P.INT32_MAX
    assert P.saturating_rounding_doubling_high_mul(P.INT32_MAX, P.INT32_MAX) == P.INT32_MAX - 1


@given(INT32, INT32)
def test_srdhm_is_round_half_up_of_the_doubled_high_product(a, b):
    got = int(P.saturating_rounding_doubling_high_mul(a, b))
    if a == b == P.INT32_MIN:
        assert got == P.INT32_MAX
    else:
        assert got == exact_half_up(Fraction(a * b, 1 << 31))


@pytest.mark.parametrize("a, want", [(1, 1), (-1, 0), (3, 2), (-3, -1)])
def test_srdhm_ties_go_up(a, want):
    # a * 2**30 * 2 / 2**32 = a / 2: the nudge makes -0.5 -> 0 and -1.5 -> -1 (VQRDMULH)
    assert int(P.saturating_rounding_doubling_high_mul(a, 1 << 30)) == want


def test_srdhm_vectorizes_with_per_channel_multipliers():
    a = np.array([[5, -5], [1 << 30, -(1 << 30)]], dtype=np.int64)
    m = np.array([1 << 30, 3 << 29])
    want = [[exact_half_up(Fraction(int(a[i, j]) * int(m[j]), 1 << 31)) for j in range(2)]
            for i in range(2)]
    np.testing.assert_array_equal(P.saturating_rounding_doubling_high_mul(a, m), want)


# ---- RoundingDivideByPOT ---------------------------------------------------------------


@pytest.mark.parametrize("x, e, want", [
    (5, 1, 3), (-5, 1, -3), (3, 1, 2), (-3, 1, -2), (1, 1, 1), (-1, 1, -1),
    (6, 2, 2), (-6, 2, -2), (7, 0, 7), (P.INT32_MIN, 31, -1), (P.INT32_MAX, 31, 1),
    (P.INT32_MIN, 0, P.INT32_MIN), (1 << 30, 31, 1), (-(1 << 30), 31, -1),
    ((1 << 30) - 1, 31, 0),
])
def test_rounding_divide_by_pot_ties_away_from_zero(x, e, want):
    assert int(P.rounding_divide_by_pot(x, e)) == want


@given(INT32, st.integers(0, 31))
def test_rounding_divide_by_pot_is_exact_rounding(x, e):
    assert int(P.rounding_divide_by_pot(x, e)) == exact_half_away(Fraction(x, 1 << e))


def test_rounding_divide_by_pot_rejects_bad_exponents():
    with pytest.raises(ValueError):
        P.rounding_divide_by_pot(1, 32)
    with pytest.raises(ValueError):
        P.rounding_divide_by_pot(1, -1)


# ---- MultiplyByQuantizedMultiplier, both roundings --------------------------------------


@given(st.integers(-(1 << 24), 1 << 24), MULTIPLIER, st.integers(-31, 0))
def test_single_rounding_is_one_exact_rounding_ties_away(x, m, shift):
    got = int(P.multiply_by_quantized_multiplier_single(x, m, shift))
    assert got == exact_half_away(Fraction(x * m, 1 << (31 - shift)))


@given(st.integers(-(1 << 24), 1 << 24), MULTIPLIER, st.integers(-31, 0))
def test_double_rounding_is_within_one_of_exact(x, m, shift):
    got = int(P.multiply_by_quantized_multiplier_double(x, m, shift))
    high = exact_half_up(Fraction(x * m, 1 << 31))
    assert got == exact_half_away(Fraction(high, 1 << -shift))
    assert abs(got - Fraction(x * m, 1 << (31 - shift))) <= 1


def test_the_two_roundings_differ_on_double_ties():
    # 1 * 2**30 / 2**32 = 0.25: rounded once it is 0; rounded twice 0.25 -> 0.5 -> 1.
    assert int(P.multiply_by_quantized_multiplier_single(1, 1 << 30, -1)) == 0
    assert int(P.multiply_by_quantized_multiplier_double(1, 1 << 30, -1)) == 1
    # exact ties (+-0.5, +-1.5) go away from zero in both
    for x, want in ((2, 1), (-2, -1), (6, 2), (-6, -2)):
        assert int(P.multiply_by_quantized_multiplier_single(x, 1 << 30, -1)) == want
        assert int(P.multiply_by_quantized_multiplier_double(x, 1 << 30, -1)) == want
    # -0.25: once -> 0; twice: SRDHM's tie goes up (-0.5 -> 0) -> 0
    assert int(P.multiply_by_quantized_multiplier_single(-1, 1 << 30, -1)) == 0
    assert int(P.multiply_by_quantized_multiplier_double(-1, 1 << 30, -1)) == 0


def test_multiply_at_int32_limits_and_both_shift_ends():
    m = P.INT32_MAX
    for profile in PROFILE_NAMES:
        f = get_profile(profile).multiply
        assert int(f(P.INT32_MAX, m, 0)) == P.INT32_MAX - 1
        assert int(f(P.INT32_MIN, m, 0)) == -P.INT32_MAX
        assert int(f(P.INT32_MAX, m, -31)) == 1
        assert int(f(P.INT32_MIN, m, -31)) == -1
        assert int(f(P.INT32_MIN, 1 << 30, -31)) == exact_half_away(
            Fraction(P.INT32_MIN, 1 << 32))
    # a positive shift multiplies first (TFLM wraps like the C int32 does)
    assert int(P.multiply_by_quantized_multiplier_double(3, 1 << 30, 2)) == 6
    assert int(P.multiply_by_quantized_multiplier_single(3, 1 << 30, 2)) == 6
    with pytest.raises(ValueError):
        P.multiply_by_quantized_multiplier_single(1, 1 << 30, 31)


def test_requantize_saturates_and_adds_the_zero_point():
    acc = np.array([[10**9, -(10**9), 0, 300]], dtype=np.int64)
    m = np.full(4, 1 << 30)
    s = np.full(4, -1)
    for profile in PROFILE_NAMES:
        out = get_profile(profile).requantize(acc, m, s, output_zero_point=-5)
        assert out.dtype == np.int8
        np.testing.assert_array_equal(out, [[127, -128, -5, 70]])


def test_wrap_int32_is_twos_complement():
    np.testing.assert_array_equal(
        P.wrap_int32(np.array([P.INT32_MAX + 1, P.INT32_MIN - 1, -1, 1 << 32])),
        [P.INT32_MIN, P.INT32_MAX, -1, 0])


# ---- QuantizeMultiplier ------------------------------------------------------------------


def test_quantize_multiplier_carry_when_rounding_reaches_two_to_the_31():
    real = 1.0 - 2.0**-40  # frexp mantissa rounds up to exactly 2**31
    assert P.quantize_multiplier(real) == (1 << 30, 1)


def test_quantize_multiplier_flushes_tiny_values_and_rejects_bad_ones():
    assert P.quantize_multiplier(2.0**-33) == (0, 0)
    assert P.quantize_multiplier(0.0) == (0, 0)
    assert P.quantize_multiplier(0.5) == (1 << 30, 0)
    with pytest.raises(ValueError):
        P.quantize_multiplier(-1.0)
    with pytest.raises(ValueError):
        P.quantize_multiplier(float("nan"))


@given(st.floats(2.0**-30, 2.0**20))
@settings(max_examples=200, deadline=None)  # timings vary on a shared machine
def test_quantize_multiplier_represents_the_real_value(real):
    m, s = P.quantize_multiplier(real)
    assert (1 << 30) <= m <= P.INT32_MAX
    assert abs(m * 2.0 ** (s - 31) - real) <= real * 2.0**-30


def test_single_rounding_build_saturates_large_shifts():
    assert get_profile("tflite").quantize_multiplier(2.0**31) == (P.INT32_MAX, 30)
    assert get_profile("tflm").quantize_multiplier(2.0**31) == (1 << 30, 32)
    with pytest.raises(ValueError, match="unknown arithmetic profile"):
        get_profile("cmsis")


# ---- ADD ---------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_add_rescale_matches_the_real_sum(profile):
    rng = np.random.default_rng(0)
    s_a, s_r, s_o, zp_a, zp_r, zp_o = 0.031, 0.017, 0.04, -3, 7, 2
    twice = 2 * max(s_a, s_r)
    a = rng.integers(-128, 128, 5000)
    r = rng.integers(-128, 128, 5000)
    q = get_profile(profile).quantize_multiplier
    out = P.add_rescale(
        a, r, a_zero_point=zp_a, r_zero_point=zp_r, output_zero_point=zp_o, left_shift=20,
        a_multiplier=q(s_a / twice), r_multiplier=q(s_r / twice),
        output_multiplier=q(twice / ((1 << 20) * s_o)))
    real = (s_a * (a - zp_a) + s_r * (r - zp_r)) / s_o
    want = np.clip(np.floor(real + 0.5) + zp_o, -128, 127)
    assert out.dtype == np.int8
    assert np.abs(out - want).max() <= 1
    near_tie = np.abs(real - np.floor(real) - 0.5) < 1e-4
    np.testing.assert_array_equal(out[~near_tie], want[~near_tie])
    assert out.max() == 127 and out.min() == -128  # saturates at both ends


def test_add_is_gemmlowp_double_rounding():
    x = np.arange(-(1 << 27), 1 << 27, 9973, dtype=np.int64)
    m, shift = 1518500250, -3
    a = P.multiply_by_quantized_multiplier_smaller_than_one(x, m, shift)
    want = [exact_half_away(Fraction(exact_half_up(Fraction(int(v) * m, 1 << 31)), 1 << 3))
            for v in x[:200]]
    np.testing.assert_array_equal(a[:200], want)


# ---- LiteRT's double-precision FULLY_CONNECTED requantization -----------------------------


@pytest.mark.parametrize("v, want", [
    (0.49999999999999994, 0), (0.5, 1), (-0.5, -1), (2.5, 3), (-2.5, -3), (1.4999999999999998, 1),
    (-1.4999999999999998, -1), (0.0, 0), (-0.0, 0), (2.0**52 + 1, 2.0**52 + 1), (-7.5, -8)])
def test_round_half_away_exact(v, want):
    assert P.round_half_away_exact(np.array([v]))[0] == want


@given(st.integers(-(1 << 31), (1 << 31) - 1), st.floats(2.0**-40, 2.0**-1), st.integers(-20, 20))
@settings(max_examples=300, deadline=None)  # timings vary on a shared machine
def test_requantize_double_is_std_round_of_the_double_product(acc, scale, zp):
    v = float(acc) * scale  # IEEE double product, as double(acc) * scale in C++
    want = max(-128, min(127, exact_half_away(Fraction(v)) + zp))
    got = P.requantize_double(np.array([acc]), np.array([scale]), zp)
    assert int(got[0]) == want
    tflite = get_profile("tflite")
    assert int(tflite.requantize(np.array([acc]), 0, 0, zp, scales=np.array([scale]))[0]) == want


# ---- TANH --------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILE_NAMES)
@pytest.mark.parametrize("scale, zp", [(0.02, 0), (0.0031, -17), (0.25, 90), (1e-4, 3)])
def test_tanh_tables_are_monotone_and_close_to_tanh(profile, scale, zp):
    table = get_profile(profile).tanh_table(QuantParams(scale, zp))
    assert table.dtype == np.int8 and table.shape == (256,)
    assert np.all(np.diff(table.astype(int)) >= 0)
    q = np.arange(-128, 128)
    exact = np.clip(np.tanh(scale * (q - zp)) * 128, -128, 127)
    assert np.abs(table - exact).max() <= 1.0


def test_tflite_tanh_table_is_the_rounded_float_tanh():
    q = np.arange(-128, 128)
    table = P.tanh_table_tflite(0.05, 0)
    want = np.clip(np.sign(np.tanh(0.05 * q)) * np.floor(np.abs(np.tanh(0.05 * q) * 128) + 0.5),
                   -128, 127)
    np.testing.assert_array_equal(table, want)
    assert table[0] == -128 and table[-1] == 127 and table[128] == 0


@given(st.integers(-(1 << 31) + 1, (1 << 31) - 1))
@settings(max_examples=300, deadline=None)  # timings vary on a shared machine
def test_gemmlowp_tanh_is_accurate(raw):
    # input Q4.27, output Q0.31
    got = P.gemmlowp_tanh(raw) / 2.0**31
    assert abs(got - math.tanh(raw / 2.0**27)) < 2.0**-20
    assert P.gemmlowp_tanh(-raw) == -P.gemmlowp_tanh(raw)


def test_tflm_tanh_input_params_follow_tanh_common():
    multiplier, left_shift, radius = P.tflm_tanh_input_params(1 / 32)
    # 1/32 * 2**27 = 2**22 = 0.5 * 2**23
    assert (multiplier, left_shift) == (1 << 30, 23)
    assert radius == math.floor(15 * 2**27 / 2**23)


# ---- the float64 form of the requantization -----------------------------------------------


@given(st.lists(st.integers(-(1 << 21) + 1, (1 << 21) - 1), min_size=1, max_size=20),
       MULTIPLIER, st.integers(-31, 0), st.integers(-128, 127))
@settings(max_examples=300, deadline=None)  # timings vary on a shared machine
def test_float_requantize_equals_the_integer_one(accs, m, shift, zp):
    from elman.runtime.float_exact import requantize_float

    acc = np.array(accs, dtype=np.int64)
    scale = np.float64(m * 2.0 ** (shift - 31))  # the scale the multiplier stands for, exactly
    for profile in PROFILE_NAMES:
        requantize = get_profile(profile).requantize
        want = requantize(acc, np.int64(m), np.int64(shift), zp)
        got = requantize_float(acc.astype(np.float64), np.int64(m), np.int64(shift), zp, profile,
                               scales=scale)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(requantize(acc, m, shift, zp, scales=scale), want)


@pytest.mark.parametrize("shift", [-1, -9, -12])
def test_float_requantize_on_every_tie(shift):
    from elman.runtime.float_exact import requantize_float

    # multiplier 2**30: acc * 2**(shift - 1) lands on every half-integer
    acc = np.arange(-(1 << 14), 1 << 14, dtype=np.int64)
    for profile in PROFILE_NAMES:
        want = get_profile(profile).requantize(acc, np.int64(1 << 30), np.int64(shift), 3)
        got = requantize_float(acc.astype(np.float64), np.int64(1 << 30), np.int64(shift), 3,
                               profile, scales=np.float64(2.0 ** (shift - 1)))
        np.testing.assert_array_equal(got, want)


def test_float_form_applies_only_within_its_bound():
    from elman.runtime.float_exact import applies, max_abs_accumulator

    w = np.full((2, 4), -128, dtype=np.int8)
    bound = max_abs_accumulator(w, np.array([5, -7]), input_zero_point=-128)
    assert bound == 4 * 128 * 255 + 7
    assert applies(bound, np.array([-3, -9]))
    assert not applies(1 << 21, np.array([-3]))
    assert not applies(bound, np.array([1, -9]))


@given(st.lists(st.integers(-(1 << 21) + 1, (1 << 21) - 1), min_size=1, max_size=20),
       st.floats(2.0**-30, 2.0**-1), st.integers(-128, 127))
@settings(max_examples=300, deadline=None)  # timings vary on a shared machine
def test_float_requantizer_tflite_is_literts_double_rounding(accs, scale, zp):
    from elman.runtime.float_exact import FloatRequantizer

    acc = np.array(accs, dtype=np.int64)
    m, shift = P.quantize_multiplier(scale)
    got = FloatRequantizer(np.int64(m), np.int64(shift), zp, "tflite", np.float64(scale))(
        acc.astype(np.float64))
    np.testing.assert_array_equal(got, P.requantize_double(acc, np.float64(scale), zp))
