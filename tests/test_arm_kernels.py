"""The generated rescale kernels, cross-compiled and run on emulated Cortex-M0+/M4 cores, at the
edges of int32: equal to the simulator's primitives for every case (the DSP saturation path
and ARMv6-M's 64-bit multiply included, which a host build never exercises)."""

from __future__ import annotations

import numpy as np
import pytest
from elman.firmware_codegen.arm.build import build_image
from elman.firmware_codegen.arm.machine import Machine
from elman.firmware_codegen.generate import generate_c
from elman.layers.random_model import random_model
from elman.profiles import get_profile
from elman.profiles.primitives import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier_smaller_than_one,
    requantize_double,
)
from elman.profiles.tflite import double_parts

TFLITE_HARNESS = r"""
#include "k_model_c.inc"
int32_t armharness_multiply_small(int32_t x, int32_t m, int32_t s)
{
    return k_multiply_small(x, m, (int)s);
}
int32_t armharness_requantize(int32_t acc, uint32_t top, uint32_t low, int32_t shift, int32_t zp)
{
    const k_scale_t scale = {top, low};
    return k_requantize_s8(acc, scale, (int)shift, zp);
}
"""

HARNESS = r"""
#include "k_model_c.inc"
int32_t armharness_multiply(int32_t x, int32_t m, int32_t s) { return k_multiply(x, m, (int)s); }
int32_t armharness_multiply_small(int32_t x, int32_t m, int32_t s)
{
    return k_multiply_small(x, m, (int)s);
}
int32_t armharness_requantize(int32_t acc, int32_t m, int32_t s, int32_t zp)
{
    return k_requantize_s8(acc, m, (int)(-2 - s), zp); /* the tables hold -2 - shift */
}
int32_t armharness_scale_down(int32_t x, int32_t m, int32_t s)
{
    return k_scale_down(x, m, (int)(-2 - s));
}
"""


def _cases() -> np.ndarray:
    rng = np.random.default_rng(3)
    xs = [INT32_MIN, INT32_MIN + 1, -(2**30), -65537, -3, -1, 0, 1, 2, 65535, 2**30,
          INT32_MAX - 1, INT32_MAX]
    ms = [0, 2**30, 2**30 + 1, 1518500250, INT32_MAX]
    rows = [(x, m, s) for x in xs for m in ms for s in (-31, -30, -17, -2, -1, 0)]
    for _ in range(300):  # power-of-two multipliers make exact ties frequent
        rows.append((int(rng.integers(-(2**20), 2**20)), 2**30, int(rng.integers(-31, 1))))
        rows.append((int(rng.integers(INT32_MIN, INT32_MAX, endpoint=True)),
                     int(rng.integers(2**30, INT32_MAX, endpoint=True)),
                     int(rng.integers(-31, 1))))
    return np.array(rows, dtype=np.int64)


def _double_scale_cases() -> tuple[np.ndarray, np.ndarray]:
    """(acc, scale) pairs for the tflite requantizer: int32 edges, exact half-integer products,
    products one to three ulps beside a half-integer (small odd accumulators make the double
    product's own round-to-even ties frequent), random pairs, saturating and vanishing scales."""
    rng = np.random.default_rng(5)
    accs, scales = [], []
    edges = [INT32_MIN, INT32_MIN + 1, -(2**30), -65537, -3, -1, 0, 1, 3, 65535, 2**30,
             INT32_MAX - 1, INT32_MAX]
    for s in (0.0, 2.0**-40, 1e-9, 2.0**-31, 3 * 2.0**-25, 0.0123, 0.5, 1.0, 1.7, 2.0**20):
        accs += edges
        scales += [s] * len(edges)
    for _ in range(250):
        h = int(rng.integers(-300, 300)) + 0.5
        acc = int(rng.choice([3, 5, 7, 9, 11, 13, 15, 101, 999])) if rng.random() < 0.5 else \
            int(rng.integers(1, 2**31 - 1)) * (1 if h > 0 else -1)
        acc = abs(acc) if h > 0 else -abs(acc)
        base = h / acc
        for ulps in (-3, -2, -1, 0, 1, 2, 3):
            accs.append(acc)
            scales.append(abs(float(base + ulps * np.spacing(base))))
        j = int(rng.integers(1, 25))  # power-of-two scale: an exact tie
        accs.append(int(2 * h) * 2 ** (j - 1) if abs(int(2 * h) * 2 ** (j - 1)) < 2**31 else 1)
        scales.append(2.0**-j)
        accs.append(int(rng.integers(INT32_MIN, INT32_MAX, endpoint=True)))
        scales.append(float(np.exp(rng.uniform(np.log(1e-9), np.log(1e-2)))))
    return np.array(accs, dtype=np.int64), np.array(scales, dtype=np.float64)


def _scale_words(scale: float) -> tuple[int, int, int]:
    """``{top, low}`` and shift of a float64 scale, as the generated weights store them."""
    parts, shifts = double_parts(np.array([scale]))
    return parts[0][0], parts[0][1], int(shifts[0])


def _build(profile: str, cpu: str, tmp_path, harness: str, entry_points: tuple[str, ...]):
    files = generate_c(random_model(2, 3, 1, seed=0), prefix="k", profile=profile)
    sources = {n: t for n, t in files.items() if n.endswith(".h")}
    sources["k_model_c.inc"] = files["k_model.c"]
    image = build_image(sources, tmp_path, cpu=cpu, opt="O2", harness=harness,
                        entry_points=entry_points)
    return Machine(image)


def _signed(r0: int) -> int:
    return r0 - (1 << 32) if r0 >= 1 << 31 else r0


@pytest.mark.parametrize("cpu", ["cortex-m0plus", "cortex-m4"])
def test_tflite_requantizer_on_the_core_equals_the_double_product(cpu, tmp_path):
    machine = _build("tflite", cpu, tmp_path, TFLITE_HARNESS,
                     ("armharness_multiply_small", "armharness_requantize"))
    accs, scales = _double_scale_cases()
    zp = np.resize(np.array([-128, -5, 0, 7, 127]), len(accs))
    got = np.array([_signed(machine.call("armharness_requantize", int(a), *_scale_words(s),
                                         int(z)).r0)
                    for a, s, z in zip(accs, scales, zp, strict=True)], dtype=np.int64)
    expected = np.array([requantize_double(np.array([a]), np.array([s]), int(z))[0]
                         for a, s, z in zip(accs, scales, zp, strict=True)], dtype=np.int64)
    np.testing.assert_array_equal(got, expected)
    # ADD's rescale: gemmlowp double rounding, as in the tflm profile
    cases = _cases()
    got_add = np.array([_signed(machine.call("armharness_multiply_small", *map(int, c)).r0)
                        for c in cases], dtype=np.int64)
    x, m, s = cases.T
    np.testing.assert_array_equal(
        got_add, multiply_by_quantized_multiplier_smaller_than_one(x, m, s))


@pytest.mark.parametrize("cpu", ["cortex-m0plus", "cortex-m4"])
def test_rescale_kernels_on_the_core_equal_the_primitives(cpu, tmp_path):
    profile = "tflm"
    machine = _build(profile, cpu, tmp_path, HARNESS,
                     ("armharness_multiply", "armharness_multiply_small", "armharness_requantize",
                      "armharness_scale_down"))
    cases = _cases()
    zp = np.resize(np.array([-128, -5, 0, 7, 127]), len(cases))

    def call(name: str, *args: int) -> int:
        r0 = machine.call(name, *(int(a) for a in args)).r0
        return r0 - (1 << 32) if r0 >= 1 << 31 else r0

    # the model's shifts are all <= -2, so its requantize_s8 is the one-rounding form, which
    # only takes such shifts (the generator checks); scale_down is that form's rescale
    got = np.array([[call("armharness_multiply", x, m, s),
                     call("armharness_multiply_small", x, m, s),
                     call("armharness_requantize", x, m, s, z) if s <= -2 else 0,
                     call("armharness_scale_down", x, m, s) if s <= -2 else 0]
                    for (x, m, s), z in zip(cases, zp, strict=True)], dtype=np.int64)
    x, m, s = cases.T
    tflm = get_profile(profile)
    np.testing.assert_array_equal(got[:, 0], tflm.multiply(x, m, s))
    np.testing.assert_array_equal(
        got[:, 1], multiply_by_quantized_multiplier_smaller_than_one(x, m, s))
    down = s <= -2
    assert down.sum() > 300
    np.testing.assert_array_equal(got[down, 2], tflm.requantize(x, m, s, zp)[down])
    np.testing.assert_array_equal(
        got[down, 3], multiply_by_quantized_multiplier_smaller_than_one(x[down], m[down], s[down]))
