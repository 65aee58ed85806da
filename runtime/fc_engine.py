"""One int8 FULLY_CONNECTED in the simulator's numpy engine (shared by every layer kind).

The matrix products run in float BLAS: every product and partial sum is an
integer far below the float's exact range, so the float result is the exact
integer sum. The requantization then runs in float64 where that is exact
(``float_exact``), else with the profile's integer reference.
"""

from __future__ import annotations

import numpy as np
from elman.profiles.base import Profile
from elman.quantize.ir import FullyConnected
from elman.runtime.float_exact import (
    FloatRequantizer,
    MagicRounding,
    applies,
    max_abs_accumulator,
)


class FullyConnectedEngine:
    """``fc`` prepared for a profile: ``engine(q)`` is its int8 output for int8 inputs."""

    def __init__(self, fc: FullyConnected, profile: Profile):
        self.requantization = profile.fully_connected(fc)
        req = self.requantization
        self.weights_t = fc.weights.astype(np.float64).T.copy()  # (in, out)
        self.bias = fc.bias.astype(np.float64)
        self.has_bias = bool(np.any(self.bias))
        self.input_zero_point = int(fc.input.zero_point)
        self.output_zero_point = int(fc.output.zero_point)
        bound = max_abs_accumulator(fc.weights, fc.bias, self.input_zero_point)
        self.wide = fc.input.bits == 16  # 16x8: exact int64 sums, the profile's epilogue
        self.weights_int64_t = fc.weights.astype(np.int64).T.copy() if self.wide else None
        # None: only the profile's integer form
        rounding = None if self.wide else profile.compiled_requantization
        self.float_requantizer = FloatRequantizer(
            req.multipliers, req.shifts, self.output_zero_point, rounding, req.scales,
        ) if rounding is not None and applies(bound, req.shifts) else None
        # float32 BLAS is exact too (every partial sum is an integer below 2**21)
        self.magic = MagicRounding.build(self.float_requantizer)
        self.weights32 = self.weights_t.astype(np.float32)
        self.bias32 = self.bias.astype(np.float32)

    def accumulate(self, q: np.ndarray) -> np.ndarray:
        """``sum_d w[c, d] * (q[d] - zp_in) + bias[c]``, exact integers in float64."""
        centered = q.astype(np.float64)
        if self.input_zero_point:
            centered -= self.input_zero_point
        acc = centered @ self.weights_t
        if self.has_bias:
            acc += self.bias
        return acc

    def __call__(self, q: np.ndarray) -> np.ndarray:
        """int8 outputs (N, out) of int8 inputs (N, in) (int16 of int16 for 16x8)."""
        if self.wide:
            acc = (q.astype(np.int64) - self.input_zero_point) @ self.weights_int64_t
            return self.requantization(acc + self.bias.astype(np.int64))
        if self.magic is not None:
            return self.from_float32(q.astype(np.float32))
        acc = self.accumulate(q)
        if self.float_requantizer is not None:
            return self.float_requantizer.into_float(acc).astype(np.int8)
        return self.requantization(acc.astype(np.int64))

    def from_float32(self, q32: np.ndarray) -> np.ndarray:
        """The layer on int8 values held in float32 (only where ``magic`` applies)."""
        if self.input_zero_point:
            q32 = q32 - np.float32(self.input_zero_point)  # exact: small integers
        acc32 = q32 @ self.weights32
        if self.has_bias:
            acc32 += self.bias32
        return self.magic(acc32)
