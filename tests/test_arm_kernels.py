"""The generated rescale kernels, cross-compiled and run on emulated Cortex-M0+/M4 cores, at the
edges of int32: equal to the simulator's primitives for every case (the DSP saturation path
and ARMv6-M's 64-bit multiply included, which a host build never exercises)."""

from __future__ import annotations

import numpy as np
import pytest
from elman.firmware_codegen.arm.build import build_image
from elman.firmware_codegen.arm.machine import Machine
from elman.firmware_codegen.generate import generate_c
from elman.firmware_codegen.random_ir import random_ir
from elman.runtime.primitives import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_smaller_than_one,
    requantize,
)

HARNESS = r"""
#include "k_model_c.inc"
int32_t armharness_multiply(int32_t x, int32_t m, int32_t s) { return k_multiply(x, m, (int)s); }
int32_t armharness_multiply_small(int32_t x, int32_t m, int32_t s)
{
    return k_multiply_small(x, m, (int)s);
}
int32_t armharness_requantize(int32_t acc, int32_t m, int32_t s, int32_t zp)
{
    return k_requantize_s8(acc, m, (int)s, zp);
}
"""


def _cases() -> np.ndarray:
    rng = np.random.default_rng(3)
    xs = [INT32_MIN, INT32_MIN + 1, -(2**30), -65537, -3, -1, 0, 1, 2, 65535, 2**30,
          INT32_MAX - 1, INT32_MAX]
    ms = [0, 2**30, 2**30 + 1, 1518500250, INT32_MAX]
    rows = [(x, m, s) for x in xs for m in ms for s in (-31, -30, -17, -1, 0)]
    for _ in range(300):  # power-of-two multipliers make exact ties frequent
        rows.append((int(rng.integers(-(2**20), 2**20)), 2**30, int(rng.integers(-31, 1))))
        rows.append((int(rng.integers(INT32_MIN, INT32_MAX, endpoint=True)),
                     int(rng.integers(2**30, INT32_MAX, endpoint=True)),
                     int(rng.integers(-31, 1))))
    return np.array(rows, dtype=np.int64)


@pytest.mark.parametrize("cpu", ["cortex-m0plus", "cortex-m4"])
@pytest.mark.parametrize("profile", ["tflm", "tflite"])
def test_rescale_kernels_on_the_core_equal_the_primitives(cpu, profile, tmp_path):
    files = generate_c(random_ir(2, 3, 1, seed=0), prefix="k", profile=profile)
    sources = {n: t for n, t in files.items() if n.endswith(".h")}
    sources["k_model_c.inc"] = files["k_model.c"]
    image = build_image(sources, tmp_path, cpu=cpu, opt="O2", harness=HARNESS,
                        entry_points=("armharness_multiply", "armharness_multiply_small",
                                      "armharness_requantize"))
    machine = Machine(image)
    cases = _cases()
    zp = np.resize(np.array([-128, -5, 0, 7, 127]), len(cases))

    def call(name: str, *args: int) -> int:
        r0 = machine.call(name, *(int(a) for a in args)).r0
        return r0 - (1 << 32) if r0 >= 1 << 31 else r0

    got = np.array([[call("armharness_multiply", x, m, s),
                     call("armharness_multiply_small", x, m, s),
                     call("armharness_requantize", x, m, s, z)]
                    for (x, m, s), z in zip(cases, zp, strict=True)], dtype=np.int64)
    x, m, s = cases.T
    np.testing.assert_array_equal(got[:, 0], multiply_by_quantized_multiplier(x, m, s, profile))
    np.testing.assert_array_equal(
        got[:, 1], multiply_by_quantized_multiplier_smaller_than_one(x, m, s, profile))
    np.testing.assert_array_equal(got[:, 2], requantize(x, m, s, zp, profile))
