"""The generated C kernels against the simulator's primitives at the edges of int32.

Small programs include the generated ``<prefix>_model.c`` (so its static kernels
are visible), read cases from stdin and print the kernels' results, which must
equal the profiles' arithmetic (``elman.profiles``) for every case:

- ``<prefix>_multiply`` (tflm), ``<prefix>_multiply_small`` and its one-rounding form
  ``<prefix>_scale_down`` (both profiles) on ``x multiplier shift`` triples;
- the tflite profile's ``<prefix>_round_scaled``, LiteRT's double-precision
  ``std::round(acc * scale)`` done in integers, on accumulators and float64 scales
  that put the product on, and one ulp beside, half-integers (its one-multiply path
  with accumulators near 2^31, where its error bound is tightest).
"""

import numpy as np
import pytest
from elman.firmware_codegen.generate import generate_c
from elman.firmware_codegen.host import compile_program, run_program
from elman.layers.random_model import random_model
from elman.profiles import get_profile
from elman.profiles.primitives import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier_smaller_than_one,
)
from elman.profiles.tflite import double_parts
from elman.quantize.ir import round_half_away_exact

MULTIPLY_PROGRAM = r"""
#include <stdio.h>
#include "k_model.c"

int main(void)
{
    long long x, m, s;
    while (scanf("%lld %lld %lld", &x, &m, &s) == 3) {
#if K_TFLM
        const long full = (long)k_multiply((int32_t)x, (int32_t)m, (int)s);
#else
        const long full = 0L;
#endif
        const long small = s <= 0 ? (long)k_multiply_small((int32_t)x, (int32_t)m, (int)s) : 0L;
        const long down = s <= -2 ? (long)k_scale_down((int32_t)x, (int32_t)m, (int)(-2 - s)) : 0L;
        printf("%ld %ld %ld\n", full, small, down);
    }
    return 0;
}
"""

ROUND_SCALED_PROGRAM = r"""
#include <stdio.h>
#include "k_model.c"

int main(void)
{
    long long acc, top, low, shift;
    while (scanf("%lld %lld %lld %lld", &acc, &top, &low, &shift) == 4) {
        k_scale_t s;
        s.top = (uint32_t)top;
        s.low = (uint32_t)low;
        printf("%ld\n", (long)k_round_scaled((int32_t)acc, s, (int)shift));
    }
    return 0;
}
"""


def _program(profile: str, source: str):
    files = generate_c(random_model(2, 3, 1, seed=0), prefix="k", profile=profile)
    files["kernel_test.c"] = f"#define K_TFLM {int(profile == 'tflm')}\n" + source
    return compile_program(files, ["kernel_test.c"], extra_flags=("-Wno-unused-function",))


def _multiply_cases() -> np.ndarray:
    rng = np.random.default_rng(7)
    xs = [INT32_MIN, INT32_MIN + 1, -(2**30), -65536, -3, -2, -1, 0, 1, 2, 3, 65535, 2**30,
          INT32_MAX - 1, INT32_MAX]
    ms = [0, 2**30, 2**30 + 1, 1518500250, INT32_MAX - 1, INT32_MAX]
    rows = [(x, m, s) for x in xs for m in ms for s in range(-31, 31)]
    # power-of-two multipliers make exact ties (x * m / 2^k = n + 1/2) frequent
    for _ in range(3000):
        rows.append((int(rng.integers(-(2**20), 2**20)), 2**30, int(rng.integers(-31, 1))))
        rows.append((int(rng.integers(INT32_MIN, INT32_MAX, endpoint=True)),
                     int(rng.integers(2**30, INT32_MAX, endpoint=True)),
                     int(rng.integers(-31, 31))))
    return np.array(rows, dtype=np.int64)


@pytest.mark.parametrize("profile", ["tflm", "tflite"])
def test_multiply_equals_primitives_at_int32_edges(profile):
    cases = _multiply_cases()
    stdin = "".join(f"{x} {m} {s}\n" for x, m, s in cases).encode()
    out = run_program(_program(profile, MULTIPLY_PROGRAM), stdin, []).stdout.split()
    got = np.array(out, dtype=np.int64).reshape(-1, 3)
    x, m, s = cases.T
    if profile == "tflm":
        np.testing.assert_array_equal(got[:, 0], get_profile("tflm").multiply(x, m, s))
    small = s <= 0
    want_small = multiply_by_quantized_multiplier_smaller_than_one(x[small], m[small], s[small])
    np.testing.assert_array_equal(got[small, 1], want_small)
    down = s <= -2
    np.testing.assert_array_equal(got[down, 2], multiply_by_quantized_multiplier_smaller_than_one(
        x[down], m[down], s[down]))
    assert len(cases) > 8000


def _double_parts(scale: float) -> tuple[int, int, int]:
    """``{top, low}`` and shift of a float64 scale, as the generated weights store them."""
    parts, shifts = double_parts(np.array([scale]))
    return parts[0][0], parts[0][1], int(shifts[0])


def test_round_scaled_equals_litert_double_rounding():
    rng = np.random.default_rng(0)
    accs, scales = [], []
    for _ in range(8000):  # anywhere
        accs.append(int(rng.integers(INT32_MIN, INT32_MAX, endpoint=True)
                        if rng.random() < 0.5 else rng.integers(-(2**20), 2**20)))
        scales.append(float(10 ** rng.uniform(-12, 1)))
    for _ in range(8000):  # products on, and one ulp of the scale beside, half-integers
        acc = int(rng.integers(1, 2**31)) * int(rng.choice([-1, 1]))
        s = abs((int(rng.integers(-300, 300)) + 0.5) / acc)
        step = int(rng.integers(-2, 3))
        for _ in range(abs(step)):
            s = float(np.nextafter(s, np.inf if step > 0 else 0.0))
        accs.append(acc)
        scales.append(s)
    for _ in range(6000):  # the one-multiply path (scales in [2^-32, 1/2)) at its worst:
        # |acc| near 2^31, products on and beside half-integers, results up to saturation
        acc = int(rng.integers(2**30, 2**31 + 1)) * int(rng.choice([-1, 1]))
        s = abs((int(rng.integers(0, 1100)) + 0.5) / acc)
        for _ in range(int(rng.integers(0, 4))):
            s = float(np.nextafter(s, np.inf if rng.random() < 0.5 else 0.0))
        accs.append(max(acc, INT32_MIN) if acc < 0 else min(acc, INT32_MAX))
        scales.append(s)
    for acc in (INT32_MIN, INT32_MAX, -1, 0, 1):
        for s in (0.0, 2.0**-31, 0.5, 1.0, 3.0, 2.0**-70, 0.49999999999999994, 0.25,
                  2.0**-32, 2.0**-33, np.nextafter(2.0**-32, 0.0), np.nextafter(0.5, 0.0)):
            accs.append(acc)
            scales.append(s)
    stdin = "".join(f"{a} {' '.join(map(str, _double_parts(s)))}\n"
                    for a, s in zip(accs, scales, strict=True)).encode()
    got = np.array(run_program(_program("tflite", ROUND_SCALED_PROGRAM), stdin, []).stdout.split(),
                   dtype=np.int64)
    exact = round_half_away_exact(np.array(accs, np.float64) * np.array(scales, np.float64))
    np.testing.assert_array_equal(got, np.clip(exact, -1024, 1024).astype(np.int64))
    # every path is well exercised: scales outside the one-multiply range, and within it
    # products decided by the one multiply and products beside a rounding boundary
    parts, shifts = double_parts(np.array(scales))
    paths = [_path(abs(a), top, int(shift)) for a, (top, _), shift
             in zip(accs, parts, shifts, strict=True)]
    assert min(paths.count(p) for p in ("exact", "one multiply", "guard")) > 500, \
        {p: paths.count(p) for p in set(paths)}


def _path(a: int, top: int, shift: int) -> str:
    """Which way the generated ``round_scaled`` takes for |acc| = a (see its comment)."""
    if not 33 <= shift <= 63:
        return "exact"
    y = a * top + 2 ** (shift - 1) + 2**32
    return "one multiply" if (y % 2**shift) >= 2**32 else "guard"
