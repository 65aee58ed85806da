"""The simulator's fused last rounding (``float_exact.MagicRounding``) against the
integer requantization, ties included, and the fast ``run`` against the integer
reference program (``elman.runtime.reference``) on random 300- and 1100-unit models."""

from __future__ import annotations

import numpy as np
import pytest
from elman.profiles import PROFILE_NAMES, get_profile
from elman.profiles import primitives as P
from elman.quantize.reader import read_ir
from elman.quantize.testing import random_step_tflite
from elman.runtime.float_exact import FloatRequantizer, MagicRounding
from elman.runtime.reference import reference_run
from elman.runtime.simulator import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

ACCS = st.lists(st.integers(-(1 << 21) + 1, (1 << 21) - 1), min_size=1, max_size=40)


def _magic(m, shift, zp, profile, scale):
    rq = FloatRequantizer(np.int64(m), np.int64(shift), zp, profile, np.float64(scale))
    return MagicRounding.build(rq)


@given(ACCS, st.integers(1 << 30, P.INT32_MAX), st.integers(-31, 0), st.integers(-128, 127))
@settings(max_examples=300, deadline=None)  # timings vary on a shared machine
def test_tflm_magic_rounding_equals_the_double_rounding(accs, m, shift, zp):
    acc = np.array(accs, dtype=np.int64)
    magic = _magic(m, shift, zp, "tflm", m * 2.0 ** (shift - 31))
    assert magic is not None  # tflm: always exact
    want = get_profile("tflm").requantize(acc, np.int64(m), np.int64(shift), zp)
    np.testing.assert_array_equal(magic(acc.astype(np.float32)), want)


@pytest.mark.parametrize("shift", [0, -1, -9, -12, -20])
def test_tflm_magic_rounding_on_every_tie(shift):
    # multiplier 2**30: SRDHM halves acc (ties), RoundingDivideByPOT then meets every tie
    acc = np.arange(-(1 << 16), 1 << 16, dtype=np.int64)
    for m in (1 << 30, (1 << 30) + 1, P.INT32_MAX):
        magic = _magic(m, shift, 3, "tflm", m * 2.0 ** (shift - 31))
        want = get_profile("tflm").requantize(acc, np.int64(m), np.int64(shift), 3)
        np.testing.assert_array_equal(magic(acc.astype(np.float32)), want)


@given(ACCS, st.floats(2.0**-20, 2.0**-1), st.integers(-128, 127))
@settings(max_examples=300, deadline=None)  # timings vary on a shared machine
def test_tflite_magic_rounding_is_literts_double_rounding_or_refused(accs, scale, zp):
    acc = np.array(accs, dtype=np.int64)
    m, shift = P.quantize_multiplier(scale)
    magic = _magic(m, shift, zp, "tflite", scale)
    if magic is not None:
        want = P.requantize_double(acc, np.float64(scale), zp)
        np.testing.assert_array_equal(magic(acc.astype(np.float32)), want)


@pytest.mark.parametrize("shift", [-1, -9, -12])
def test_tflite_magic_rounding_is_refused_where_exact_ties_exist(shift):
    scale = 2.0 ** (shift - 1)  # acc * scale lands on half-integers
    m, s = P.quantize_multiplier(scale)
    assert _magic(m, s, 3, "tflite", scale) is None
    # one step off a power of two: no half-integer is hit, and the result is exact
    near = np.nextafter(scale, 1.0)
    magic = _magic(*P.quantize_multiplier(near), 3, "tflite", near)
    assert magic is not None
    acc = np.arange(-(1 << 16), 1 << 16, dtype=np.int64)
    np.testing.assert_array_equal(magic(acc.astype(np.float32)),
                                  P.requantize_double(acc, np.float64(near), 3))


@pytest.mark.parametrize("units", [300, 1100])
def test_fast_run_equals_the_int64_program(units):
    ir = read_ir(random_step_tflite(5, units, 3, seed=units))
    x = np.random.default_rng(units).integers(-128, 128, (4, 6, ir.input_dim)).astype(np.int8)
    for profile in PROFILE_NAMES:
        for engine in ("numpy", "numba"):  # the float tricks are numpy's; numba's too
            expected = reference_run(ir, profile, x)
            out = Simulator(ir, profile, engine).run(x)
            np.testing.assert_array_equal(out.h, expected.h)
            np.testing.assert_array_equal(out.y, expected.y)
            assert len(np.unique(expected.h)) > 10  # the states are not saturated constants
