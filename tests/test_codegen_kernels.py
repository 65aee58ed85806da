"""The generated C kernels against the simulator's primitives at the edges of int32.

A small program includes the generated ``<prefix>_model.c`` (so its static
kernels are visible), reads ``x multiplier shift`` triples from stdin and
prints ``<prefix>_multiply`` (and ``<prefix>_multiply_small`` for shift <= 0);
the results must equal ``elman.runtime.primitives`` for every triple.
"""

import numpy as np
import pytest
from elman.firmware_codegen.generate import generate_c
from elman.firmware_codegen.host import compile_program, run_program
from elman.firmware_codegen.random_ir import random_ir
from elman.runtime.primitives import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_smaller_than_one,
)

KERNEL_PROGRAM = r"""
#include <stdio.h>
#include "k_model.c"

int main(void)
{
    long long x, m, s;
    while (scanf("%lld %lld %lld", &x, &m, &s) == 3) {
        const long full = (long)k_multiply((int32_t)x, (int32_t)m, (int)s);
        const long small = s <= 0 ? (long)k_multiply_small((int32_t)x, (int32_t)m, (int)s) : 0L;
        printf("%ld %ld\n", full, small);
    }
    return 0;
}
"""


def _cases() -> np.ndarray:
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
    files = generate_c(random_ir(2, 3, 1, seed=0), prefix="k", profile=profile)
    files["kernel_test.c"] = KERNEL_PROGRAM
    exe = compile_program(files, ["kernel_test.c"], extra_flags=("-Wno-unused-function",))
    cases = _cases()
    stdin = "".join(f"{x} {m} {s}\n" for x, m, s in cases).encode()
    got = np.array(run_program(exe, stdin, []).stdout.split(), dtype=np.int64).reshape(-1, 2)
    x, m, s = cases.T
    want = multiply_by_quantized_multiplier(x, m, s, profile)
    np.testing.assert_array_equal(got[:, 0], want)
    small = s <= 0
    want_small = multiply_by_quantized_multiplier_smaller_than_one(
        x[small], m[small], s[small], profile)
    np.testing.assert_array_equal(got[small, 1], want_small)
    assert len(cases) > 8000
