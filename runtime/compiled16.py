"""The numba engine's int16-state (16x8) loops: the numpy engine's ``Int16Loop``, compiled.

A 16x8 layer has int16 activations, int8 weights and int64 sums. Per step the
compiled loop computes ``FC(x)`` and ``FC(h)`` in exact int64 sums, the profile's
16x8 epilogue written per value as the C does it (``tflm``: TFLite Micro's int64
``MultiplyByQuantizedMultiplier`` with the multiplier reduced to 16 bits;
``tflite``: LiteRT's ``std::round(double(acc) * scale)``), then the int16 ADD and
TANH. Those two are functions the profile defines once: their per-value parts
come from it as tables over every int16 value (each ADD input's first rescale,
``(q << 15)`` times its multiplier, and TANH of every int16 ``z``), so their
rounding is not written twice; only the ADD's last rescale (gemmlowp's double
rounding of the int32 sum, the same code as ``compiled_kernels.requantize_tflm``)
is written here. ``tests/test_int16_state.py`` checks both engines equal value for
value on random 16x8 models, and the compiled one equals LiteRT and TFLite Micro.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from elman.profiles import primitives as P
from elman.profiles.base import AddRescale, Profile
from elman.quantize.ir import FullyConnected, QuantParams

INT16_VALUES = np.arange(P.INT16_MIN, P.INT16_MAX + 1, dtype=np.int64)


@dataclass(frozen=True)
class CompiledFC16:
    """One 16x8 FULLY_CONNECTED in the arrays the compiled loops read: ``weights`` (out, in)
    int64 (int8 values), ``bias`` int64, and per channel TFLite Micro's reduced multiplier
    and total shift (``tflm``) or LiteRT's float64 scale (``tflite``)."""

    weights: np.ndarray
    bias: np.ndarray
    reduced: np.ndarray
    total: np.ndarray
    scale: np.ndarray
    tflm: bool

    @classmethod
    def of(cls, fc: FullyConnected, arithmetic: Profile) -> CompiledFC16:
        if fc.input.zero_point != 0 or fc.output.zero_point != 0:
            raise ValueError("a 16x8 FULLY_CONNECTED has zero points 0")
        req = arithmetic.fully_connected(fc)
        m = req.multipliers.astype(np.int64)
        return cls(
            weights=np.ascontiguousarray(fc.weights, dtype=np.int64),
            bias=np.ascontiguousarray(fc.bias, dtype=np.int64),
            reduced=np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF).astype(np.int64),
            total=(15 - req.shifts).astype(np.int64),
            scale=np.ascontiguousarray(req.scales, dtype=np.float64),
            tflm=arithmetic.compiled_requantization == "tflm",
        )

    def args(self) -> tuple:
        return self.weights, self.bias, self.reduced, self.total, self.scale, self.tflm


@dataclass(frozen=True)
class AddTanh16:
    """The int16 ADD and TANH of a layer as the compiled step reads them."""

    input1: np.ndarray  # int64 (65536,): the first rescale of ADD's input 1, by q + 32768
    input2: np.ndarray  # the same for input 2
    output_multiplier: int
    output_right: int  # -shift of the output multiplier (shift <= 0)
    tanh: np.ndarray  # int16 (65536,): TANH of every int16 z, by z + 32768

    @classmethod
    def of(cls, add: AddRescale, tanh_input: QuantParams, arithmetic: Profile) -> AddTanh16:
        def first(multiplier: tuple[int, int]) -> np.ndarray:
            shifted = P.wrap_int32(INT16_VALUES << add.left_shift)
            return P.multiply_by_quantized_multiplier_smaller_than_one(
                shifted, *multiplier).astype(np.int64)

        m, shift = add.output_multiplier
        if shift > 0:
            raise ValueError("the int16 ADD's output multiplier is below one")
        return cls(first(add.input1_multiplier), first(add.input2_multiplier), int(m),
                   int(-shift),
                   np.ascontiguousarray(arithmetic.tanh16(INT16_VALUES, tanh_input),
                                        dtype=np.int16))

    def args(self) -> tuple:
        return self.input1, self.input2, self.output_multiplier, self.output_right, self.tanh


def kernels():
    """The compiled kernels (numba imported on first use)."""
    from elman.runtime import compiled16_kernels

    return compiled16_kernels
