"""One FULLY_CONNECTED as the generated C stores it: the view every layer kind's C uses.

Weights are blocked 4 x 4 in the order the matrix-vector kernel reads them
(``templates/kernels/matvec_s8.c.j2``), the input zero point is folded into the
bias (checked so that no int32 accumulator can overflow), and the
requantization constants come from the profile (``elman.profiles``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from elman.profiles import get_profile
from elman.profiles.base import Requantization
from elman.profiles.tflite import double_parts
from elman.quantize.ir import FullyConnected

from elman.errors import ModelError

INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class CFullyConnected:
    """The C view of ``fc``: ``name`` is its C name part (``<prefix>_<name>_weights``)."""

    name: str  # e.g. layer1_input, layer1_recurrent, head
    title: str
    fc: FullyConnected
    profile: str

    @property
    def out_features(self) -> int:
        return self.fc.out_features

    @property
    def in_features(self) -> int:
        return self.fc.in_features

    @property
    def input_zero_point(self) -> int:
        return int(self.fc.input.zero_point)

    @property
    def output_zero_point(self) -> int:
        return int(self.fc.output.zero_point)

    # ---- the layout the matrix-vector kernel reads (kernels/matvec_s8.c.j2) ---------------
    @property
    def row_groups(self) -> int:
        return -(-self.out_features // 4)

    @property
    def col_words(self) -> int:
        return -(-self.in_features // 4)

    @property
    def rows_padded(self) -> int:
        return 4 * self.row_groups

    @property
    def cols_padded(self) -> int:
        return 4 * self.col_words

    @property
    def blocked_weights(self) -> np.ndarray:
        """int8 weights, zero-padded to multiples of 4, in 4x4 blocks: for each group of 4
        rows, for each 4 columns, 4 bytes of each of the 4 rows."""
        w = np.zeros((self.rows_padded, self.cols_padded), np.int8)
        w[: self.out_features, : self.in_features] = self.fc.weights
        blocks = w.reshape(self.row_groups, 4, self.col_words, 4).transpose(0, 2, 1, 3)
        return blocks.reshape(-1)

    @property
    def offset_weights(self) -> np.ndarray:
        """The blocked weights + 128 as unsigned bytes (what the ARMv6-M kernel's LDRB reads),
        stored as int8 bit patterns: w - 128 for w >= 0, w + 128 for w < 0 (w XOR 0x80)."""
        return (self.blocked_weights.view(np.uint8) ^ np.uint8(0x80)).view(np.int8)

    @property
    def padded_bias(self) -> np.ndarray:
        """The folded bias, zero-padded to a multiple of 4 rows (the accumulators' start)."""
        out = np.zeros(self.rows_padded, np.int64)
        out[: self.out_features] = self.bias
        return out

    @property
    def has_bias(self) -> bool:
        return bool(self.fc.has_bias)

    @functools.cached_property
    def bias64(self) -> np.ndarray:
        """16x8: the int64 bias, after checking that the sum of int8 weights times int16
        inputs cannot overflow int32 (the kernel's accumulators)."""
        worst = 32768 * np.abs(self.fc.weights.astype(np.int64)).sum(axis=1)
        if worst.max(initial=0) > INT32_MAX:
            c = int(np.argmax(worst))
            raise ModelError(f"{self.title}: the int32 sum of output {c} can overflow with int16 "
                             f"inputs (max |dot| {int(worst[c])} exceeds 2^31 - 1)")
        return self.fc.bias.astype(np.int64)

    @property
    def wide16(self) -> bool:
        """16x8: whether the bias plus the sum can leave int32, so the C adds the int64 bias
        after the kernel and requantizes in 64 bits (else the kernel starts from the bias,
        an int32, and the epilogue multiplies 32 x 32 bits, as TFLite Micro's int64 one
        computes whenever the value fits)."""
        worst = 32768 * np.abs(self.fc.weights.astype(np.int64)).sum(axis=1)
        return bool(np.any(np.abs(self.bias64) + worst > INT32_MAX))

    @property
    def padded_bias16(self) -> np.ndarray:
        """16x8 and not ``wide16``: the bias as the kernel's int32 start, padded to 4 rows."""
        out = np.zeros(self.rows_padded, np.int64)
        out[: self.out_features] = self.bias64
        return out

    @property
    def reduced_multipliers(self) -> np.ndarray:
        """16x8, tflm: TFLite Micro's 16-bit multipliers, ``(m + 2**15) >> 16`` (at most
        0x7FFF) of each quantized multiplier ``m``."""
        m = self.requantization.multipliers
        return np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)

    @property
    def total_shifts(self) -> np.ndarray:
        """16x8, tflm: ``15 - shift``, the one right shift of the int64 product."""
        shifts = self.requantization.shifts
        if shifts.size and (shifts.max() >= 8 or shifts.min() < -31):
            raise ModelError(f"{self.title}: a requantization shift is outside [-31, 8)")
        return 15 - shifts

    @property
    def scales_hex(self) -> list[str]:
        """16x8, tflite: each output's double scale as an exact C hexadecimal literal."""
        return [float(v).hex() for v in self.requantization.scales]

    @functools.cached_property
    def bias(self) -> np.ndarray:
        """int32 bias - zp_in * sum(row), checked so that no accumulator can overflow int32."""
        w = self.fc.weights.astype(np.int64)
        bias = self.fc.bias.astype(np.int64) if self.fc.has_bias else np.zeros(len(w), np.int64)
        folded = bias - self.input_zero_point * w.sum(axis=1)
        worst = np.abs(folded) + 128 * np.abs(w).sum(axis=1)
        if worst.max(initial=0) > INT32_MAX:
            c = int(np.argmax(worst))
            raise ModelError(
                f"{self.title}: the int32 accumulator of output {c} can overflow "
                f"(|bias| {abs(int(folded[c]))} + max |dot| {int(worst[c] - abs(folded[c]))} "
                "exceeds 2^31 - 1); the model's bias is out of the range int8 kernels support"
            )
        return folded

    # ---- the requantization, from the profile ---------------------------------------------
    @functools.cached_property
    def requantization(self) -> Requantization:
        req = get_profile(self.profile).fully_connected(self.fc)
        if req.shifts.size and req.shifts.max() > 30:
            raise ModelError(f"{self.title}: requantization scale "
                             f"{float(req.scales.max()):g} is 2^31 or more")
        return req

    @property
    def multipliers(self) -> np.ndarray:
        return self.requantization.multipliers

    @property
    def shifts(self) -> np.ndarray:
        return self.requantization.shifts

    @functools.cached_property
    def _double_parts(self) -> tuple[list[tuple[int, int]], np.ndarray]:
        try:
            return double_parts(self.requantization.scales)
        except ValueError as exc:
            raise ModelError(f"{self.title}: {exc}") from None

    @property
    def double_scale_parts(self) -> list[tuple[int, int]]:
        """The tflite profile's {top, low}: each scale's 53-bit mantissa, split 32 + 21 bits."""
        return self._double_parts[0]

    @property
    def double_scale_shifts(self) -> np.ndarray:
        """The tflite profile's shifts: scale = (top + low / 2**21) / 2**shift."""
        return self._double_parts[1]
