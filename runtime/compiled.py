"""The simulator's ``numba`` engine: what every layer kind's compiled loop shares.

``Simulator`` has two engines that compute the same int8 values:

``numpy``
    The reference engine: each layer kind's ``engine`` module, whole arrays, the
    profile's arithmetic (``elman.profiles``).
``numba``
    Each layer kind's ``compiled`` module (``elman.layers.<kind>.compiled``): the
    same loops compiled. The requantization of every FULLY_CONNECTED is written
    out once more (``compiled_kernels``), per value, as the C kernels do it: in
    int64 for ``tflm`` (``MultiplyByQuantizedMultiplier``, gemmlowp's double
    rounding) and in LiteRT's double precision for ``tflite``
    (``std::round(double(acc) * scale)``). Tables (an Elman layer's ADD+TANH of
    every int8 pair) come from the profile, so their rounding is not written twice.
    Nothing is approximated and no bound is assumed.

Loops over many sequences may run their matrix products in float32 BLAS
(``batched``): that is exact where the inputs are small integers and every
partial sum is an integer below ``2**24``, checked per layer from its weights
(``CompiledFC.blas_exact``); otherwise they keep int32 sums (``sequential``).
For ``tflm`` a layer may requantize in float64 where that is exact (no left
shift, ``|acc| < 2**22``: ``CompiledFC.tflm_float``).

``tests/test_simulator_engines.py`` checks the engines against each other and
against the integer reference program on random layered models, and the
compiled engine against LiteRT and TFLite Micro directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from elman.profiles.base import Requantization
from elman.quantize.ir import FullyConnected
from elman.runtime.float_exact import max_abs_accumulator

FLOAT32_EXACT = 1 << 24  # float32 holds every integer up to this; sums below it are exact
TFLM_FLOAT_EXACT = 1 << 22  # |acc| below it: tflm's requantization is exact in float64
BATCHED_FROM = 16  # sequences from which one BLAS call per step beats the compiled loop
INPUT_BLOCK = 64  # steps of inputs converted to float32 at a time (bounded memory)
LOOPS = ("sequential", "batched")


@lru_cache(maxsize=1)
def numba_available() -> bool:
    """Whether numba imports (the compiled engine's one dependency)."""
    try:
        import numba  # noqa: F401
    except Exception:  # an ImportError, or a numba that cannot load its llvmlite
        return False
    return True


def max_abs_product(fc: FullyConnected) -> int:
    """The largest ``|sum_d w[c, d] * (q[d] - zp)|`` over int8 inputs (no bias)."""
    return max_abs_accumulator(fc.weights, np.zeros(fc.out_features, np.int64),
                               int(fc.input.zero_point))


@dataclass(frozen=True)
class CompiledFC:
    """One int8 FULLY_CONNECTED in the arrays the compiled loops read.

    ``weights`` (out, in) as int16 (int8 values: the product of a weight and a
    centred input fits 16 bits); ``weights_t`` (in, out) float32 for BLAS;
    ``bias`` int32; per channel the ``multiplier`` and the shift split into
    ``left = max(shift, 0)`` and ``right = max(-shift, 0)`` (``tflm``), and
    ``scale`` (``tflite``: the float64 ``s_in * s_w / s_out``); the zero points.
    """

    weights: np.ndarray
    weights_t: np.ndarray
    bias: np.ndarray
    multiplier: np.ndarray
    left: np.ndarray
    right: np.ndarray
    scale: np.ndarray
    input_zero_point: int
    output_zero_point: int
    blas_exact: bool
    tflm_float: bool  # requantize_tflm_float is exact: no left shift, |acc| < 2**22
    tflm: bool  # the profile's requantization: tflm's integer one, else LiteRT's double

    @classmethod
    def of(cls, fc: FullyConnected, requantization: Requantization) -> CompiledFC:
        shifts = requantization.shifts
        widest_acc = max_abs_accumulator(fc.weights, fc.bias, int(fc.input.zero_point))
        return cls(
            weights=np.ascontiguousarray(fc.weights, dtype=np.int16),
            weights_t=np.ascontiguousarray(fc.weights.T, dtype=np.float32),
            bias=np.ascontiguousarray(fc.bias, dtype=np.int32),
            multiplier=np.ascontiguousarray(requantization.multipliers, dtype=np.int64),
            left=np.maximum(shifts, 0),
            right=np.maximum(-shifts, 0),
            scale=np.ascontiguousarray(requantization.scales, dtype=np.float64),
            input_zero_point=int(fc.input.zero_point),
            output_zero_point=int(fc.output.zero_point),
            blas_exact=max_abs_product(fc) < FLOAT32_EXACT,
            tflm_float=bool(np.all(shifts <= 0)) and widest_acc < TFLM_FLOAT_EXACT,
            tflm=requantization.profile.compiled_requantization == "tflm",
        )

    @property
    def out_features(self) -> int:
        return int(self.bias.shape[0])

    def args(self) -> tuple:
        """What the int32 loops (``compiled_kernels.fully_connected``) read of the layer."""
        return (self.weights, self.bias, self.multiplier, self.left, self.right, self.scale,
                self.input_zero_point, self.output_zero_point)

    def cell_args(self, as_float: bool) -> tuple:
        """What a profile's per-value requantization reads after a BLAS product."""
        if not self.tflm:
            return self.bias, self.scale
        if as_float:
            return (self.bias.astype(np.float64), self.multiplier * 2.0**-31,
                    np.ldexp(1.0, -self.right))
        return self.bias, self.multiplier, self.left, self.right

    def packed(self) -> tuple:
        """What ``compiled_kernels.requantize_rows`` reads: ``(params_f, params_i, mode)``,
        the per-channel parameters packed in rows."""
        k = kernels()
        params_f = np.ascontiguousarray(np.stack([
            self.bias.astype(np.float64), self.multiplier * 2.0**-31,
            np.ldexp(1.0, -self.right), self.scale]).reshape(4, -1))
        params_i = np.ascontiguousarray(np.stack([
            self.bias.astype(np.int64), self.multiplier, self.left, self.right]).reshape(4, -1))
        mode = k.TFLITE if not self.tflm else (k.TFLM_FLOAT if self.tflm_float else k.TFLM)
        return params_f, params_i, mode

    def centred32(self, q: np.ndarray) -> np.ndarray:
        """int8 inputs minus the input zero point, as float32 (exact small integers)."""
        c = q.astype(np.float32)
        if self.input_zero_point:
            c -= np.float32(self.input_zero_point)
        return c


def check_loop(loop: str | None) -> str | None:
    if loop is not None and loop not in LOOPS:
        raise ValueError(f"unknown loop {loop!r}; choose one of {LOOPS}")
    return loop


def kernels():
    """The shared compiled kernels (numba is imported here, on first use, and compiles or
    loads them from its on-disk cache)."""
    from elman.runtime import compiled_kernels

    return compiled_kernels
