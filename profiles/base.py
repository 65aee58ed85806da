"""What every arithmetic profile provides, and the constants derived from it once.

A profile is one interpreter's way of computing the int8 program: how a real
multiplier becomes an integer multiplier and shift, how a FULLY_CONNECTED
accumulator is requantized, and which TANH table it fills. The rest is derived
here, the same way for every profile, from the IR's stored scales:

- :class:`Requantization` of a FULLY_CONNECTED: per-channel multipliers, shifts
  and effective scales ``s_in * s_w[c] / s_out`` (float64, each factor widened
  from float32 first), and the reference epilogue ``requantize(acc)``;
- :class:`AddRescale` of an ADD: TFLite's two-stage rescale constants, the
  reference ``rescale(a, r)``, the first stage as tables and the whole ADD as a
  256 x 256 table.

The simulator (both engines), the C generator, ``elman inspect`` and the
generation-time tables all read these; nothing else derives a multiplier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from elman.profiles import primitives as P
from elman.quantize.ir import Add, FullyConnected, QuantParams


@dataclass(frozen=True, eq=False)
class Requantization:
    """A FULLY_CONNECTED's epilogue constants under one profile."""

    multipliers: np.ndarray  # int64 (channels,)
    shifts: np.ndarray  # int64 (channels,): signed left shifts
    scales: np.ndarray  # float64 (channels,): s_in * s_w[c] / s_out
    input_zero_point: int
    output_zero_point: int
    profile: Profile
    bits: int = 8  # 8: int32 accumulators to int8; 16: int64 accumulators to int16

    def __call__(self, acc: np.ndarray) -> np.ndarray:
        """Accumulators (``(..., channels)``) to int8 (int16): the profile's epilogue."""
        if self.bits == 16:
            return self.profile.requantize16(acc, self.multipliers, self.shifts,
                                             self.scales)
        return self.profile.requantize(acc, self.multipliers, self.shifts,
                                       self.output_zero_point, scales=self.scales)

    @property
    def has_left_shift(self) -> bool:
        return bool(self.shifts.size) and int(self.shifts.max()) > 0


@dataclass(frozen=True)
class AddRescale:
    """An int8 ADD's constants: TFLite's two-stage rescale (``reference_integer_ops::Add``).

    Both inputs, offset by their zero points and shifted left by ``left_shift``,
    are scaled to ``2 * max(s_1, s_2)`` by their multipliers, summed, and scaled
    to the output. Multipliers are ``(multiplier, shift)`` pairs, all below one.
    """

    input1_zero_point: int
    input2_zero_point: int
    output_zero_point: int
    left_shift: int
    input1_multiplier: tuple[int, int]
    input2_multiplier: tuple[int, int]
    output_multiplier: tuple[int, int]
    bits: int = 8

    def __call__(self, a: np.ndarray, r: np.ndarray) -> np.ndarray:
        """int8 (int16) ``ADD(a, r)`` (the reference: gemmlowp double rounding)."""
        if self.bits == 16:
            return P.add_rescale_int16(
                a, r, left_shift=self.left_shift, a_multiplier=self.input1_multiplier,
                r_multiplier=self.input2_multiplier, output_multiplier=self.output_multiplier)
        return P.add_rescale(
            a, r, a_zero_point=self.input1_zero_point, r_zero_point=self.input2_zero_point,
            output_zero_point=self.output_zero_point, left_shift=self.left_shift,
            a_multiplier=self.input1_multiplier, r_multiplier=self.input2_multiplier,
            output_multiplier=self.output_multiplier)

    def input_table(self, which: int) -> np.ndarray:
        """int64 (256,): the first stage of input ``which`` (1 or 2) for q = -128..127,
        ``((q - zp) << left_shift)`` rescaled, exactly as the step computes it."""
        zp, (m, s) = ((self.input1_zero_point, self.input1_multiplier) if which == 1
                      else (self.input2_zero_point, self.input2_multiplier))
        q = np.arange(-128, 128, dtype=np.int64)
        return P.multiply_by_quantized_multiplier_smaller_than_one(
            (q - zp) * (1 << self.left_shift), m, s).astype(np.int64)

    def table(self) -> np.ndarray:
        """int8 (256, 256): ``ADD(a, r)`` of every pair, indexed ``[a + 128, r + 128]``."""
        grid = np.arange(-128, 128, dtype=np.int64)
        return self(grid[:, None], grid[None, :])

    @property
    def below_one(self) -> bool:
        """Whether every rescale is a multiplier below one (TFLite refuses other ADDs)."""
        return max(self.input1_multiplier[1], self.input2_multiplier[1],
                   self.output_multiplier[1]) <= 0


class Profile:
    """One interpreter's arithmetic. Subclasses set the names and implement
    ``quantize_multiplier``, ``multiply``, ``requantize`` and ``tanh_table``."""

    name: str = ""
    title: str = ""  # e.g. "TFLite Micro / CMSIS-NN rounding"
    reference: str = ""  # the implementation it is bit-exact with, e.g. "the TFLite Micro ..."
    # Which requantization the simulator's fast paths (the numba engine, the numpy engine's
    # float64 form) reproduce for this profile: "tflm" (gemmlowp double rounding of the
    # quantized multiplier) or "tflite" (std::round of the double product). None: they know
    # none of its roundings, the numpy engine uses ``requantize`` and numba is unavailable.
    compiled_requantization: str | None = None

    # ---- what differs between profiles ------------------------------------------------------
    def quantize_multiplier(self, real_multiplier: float) -> tuple[int, int]:
        """``QuantizeMultiplier`` as this interpreter is built: ``(multiplier, shift)``."""
        raise NotImplementedError

    def multiply(self, x: np.ndarray, multiplier: np.ndarray | int,
                 shift: np.ndarray | int) -> np.ndarray:
        """``MultiplyByQuantizedMultiplier`` (int32 in, int32 out)."""
        raise NotImplementedError

    def requantize(self, acc: np.ndarray, multipliers: np.ndarray, shifts: np.ndarray,
                   output_zero_point: int, scales: np.ndarray | None = None) -> np.ndarray:
        """FULLY_CONNECTED's epilogue: int32 accumulators (``(..., channels)``) scaled per
        channel, plus the output zero point, saturated to int8."""
        raise NotImplementedError

    def tanh_table(self, input_q: QuantParams) -> np.ndarray:
        """int8 (256,): TANH of every int8 input ``q`` (index ``q + 128``), output (1/128, 0)."""
        raise NotImplementedError

    def requantize16(self, acc: np.ndarray, multipliers: np.ndarray, shifts: np.ndarray,
                     scales: np.ndarray) -> np.ndarray:
        """The 16x8 FULLY_CONNECTED's epilogue: int64 accumulators (``(..., channels)``)
        scaled per channel, saturated to int16 (output zero point 0)."""
        raise NotImplementedError

    def tanh16(self, z: np.ndarray, input_q: QuantParams) -> np.ndarray:
        """int16 TANH of int16 ``z`` (output (1/32768, 0)): the same kernel in LiteRT and
        TFLite Micro."""
        return P.tanh_int16(z, float(input_q.scale))

    def tanh(self, z: np.ndarray, input_q: QuantParams) -> np.ndarray:
        """TANH of int8 or int16 ``z`` (by ``input_q.bits``)."""
        if input_q.bits == 16:
            return self.tanh16(z, input_q)
        return self.tanh_table(input_q)[np.asarray(z, np.int64) + 128]

    # ---- derived the same way for every profile ---------------------------------------------
    def fully_connected(self, fc: FullyConnected) -> Requantization:
        """The requantization constants of ``fc``."""
        scales = (np.float64(fc.input.scale) * fc.weight_scales.astype(np.float64)
                  / np.float64(fc.output.scale))
        pairs = np.array([self.quantize_multiplier(float(s)) for s in scales],
                         dtype=np.int64).reshape(-1, 2)
        return Requantization(multipliers=pairs[:, 0].copy(), shifts=pairs[:, 1].copy(),
                              scales=scales, input_zero_point=int(fc.input.zero_point),
                              output_zero_point=int(fc.output.zero_point), profile=self,
                              bits=fc.output.bits)

    def add(self, add: Add) -> AddRescale:
        """The rescale constants of ``add``."""
        twice_max = 2.0 * max(float(add.input1.scale), float(add.input2.scale))
        return AddRescale(
            input1_zero_point=int(add.input1.zero_point),
            input2_zero_point=int(add.input2.zero_point),
            output_zero_point=int(add.output.zero_point),
            left_shift=int(add.left_shift),
            input1_multiplier=self.quantize_multiplier(float(add.input1.scale) / twice_max),
            input2_multiplier=self.quantize_multiplier(float(add.input2.scale) / twice_max),
            output_multiplier=self.quantize_multiplier(
                twice_max / ((1 << add.left_shift) * float(add.output.scale))),
            bits=add.output.bits,
        )

    def __repr__(self) -> str:
        return f"<profile {self.name}>"
