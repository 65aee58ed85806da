"""The requantization in float64, exactly equal to the integer form where it applies.

The simulator's hot loop runs the ``FULLY_CONNECTED`` epilogue on float64 BLAS
results instead of int64 arrays. That is exact, not approximate, under one
bound: when ``|acc| < 2**21`` (checked per layer from its weights, bias and the
int8 input range, see ``max_abs_accumulator``) and the multiplier is below
``2**31``, then

- ``acc * multiplier`` is an integer below ``2**52``: the float64 product is exact;
- scaling by ``2**-k`` is exact (a power of two);
- adding 0.5 to a value below ``2**21`` whose last bit is ``2**-31`` needs at
  most 53 bits: exact;
- ``floor`` / ``trunc``, ``v - trunc(v)`` and doubling it are exact.

So ``floor(v + 0.5)`` reproduces ``SaturatingRoundingDoublingHighMul`` (round
half up) and ``trunc(v) + trunc(2 * (v - trunc(v)))`` reproduces
``RoundingDivideByPOT`` and ``std::round`` (half away from zero) bit for bit.
Profile ``tflite`` needs no bound at all: it *is* LiteRT's double product
``acc * scale`` followed by ``std::round``. Values are clipped to +-1024 before
the last rounding (the int8 result saturates long before that). Layers outside
the bound, or with a left shift, use the profile's ``requantize``.
"""

from __future__ import annotations

import numpy as np

ACCUMULATOR_BOUND = 1 << 21
_CLIP = 1024.0


def max_abs_accumulator(weights: np.ndarray, bias: np.ndarray, input_zero_point: int) -> int:
    """The largest ``|sum_d w[c, d] * (q[d] - zp) + bias[c]|`` any int8 input can give."""
    max_in = max(abs(-128 - input_zero_point), abs(127 - input_zero_point))
    per_channel = np.abs(weights.astype(np.int64)).sum(axis=1) * max_in
    return int((per_channel + np.abs(bias.astype(np.int64))).max(initial=0))


def applies(max_abs_acc: int, shifts: np.ndarray) -> bool:
    """Whether the float64 form is exact for a layer with these bounds and shifts."""
    return max_abs_acc < ACCUMULATOR_BOUND and bool(np.all(np.asarray(shifts) <= 0))


class FloatRequantizer:
    """The profile's ``requantize`` on float64 accumulators within the bound (see module).

    ``tflm``: ``acc * (m * 2**-31)`` equals the exact ``acc * m * 2**-31`` (the factor
    is exact and so is the product, below 2**52), so one multiply replaces the
    integer product; then the two roundings. ``tflite``: LiteRT's own double
    product ``acc * scale`` and ``std::round``. ``into_float`` works in place and
    returns the saturated int8 values as float64.
    """

    def __init__(self, multipliers: np.ndarray, shifts: np.ndarray, output_zero_point: int,
                 rounding: str, scales: np.ndarray | None = None):
        m = np.asarray(multipliers, dtype=np.float64)
        shifts = np.asarray(shifts, dtype=np.int64)
        if rounding not in ("tflm", "tflite"):
            raise ValueError(f"no float64 form of the {rounding!r} requantization")
        self.tflm = rounding == "tflm"
        if self.tflm:
            self.scale = m * 2.0**-31  # SaturatingRoundingDoublingHighMul's product ...
            self.post = np.ldexp(1.0, shifts)  # ... then RoundingDivideByPOT(., -shift)
        else:
            if scales is None:
                raise ValueError("profile tflite needs the float64 effective scales")
            self.scale = np.asarray(scales, dtype=np.float64)
        self.zero_point = float(output_zero_point)

    def scale_and_round(self, acc: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
        """``acc`` (float64, in place) scaled and rounded to integers, before the zero point."""
        acc *= self.scale
        if self.tflm:
            acc += 0.5
            np.floor(acc, out=acc)  # SaturatingRoundingDoublingHighMul: half up (exact)
            acc *= self.post
        np.clip(acc, -_CLIP, _CLIP, out=acc)
        whole = np.trunc(acc, out=scratch)
        acc -= whole  # exact
        acc *= 2.0
        np.trunc(acc, out=acc)  # +-1 where |fraction| >= 1/2: round half away from zero
        acc += whole
        return acc

    def into_float(self, acc: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
        """Requantize ``acc`` in place; returns it, holding int8 values as float64."""
        self.scale_and_round(acc, scratch)
        acc += self.zero_point
        np.clip(acc, -128.0, 127.0, out=acc)
        return acc

    def __call__(self, acc: np.ndarray) -> np.ndarray:
        return self.into_float(np.array(acc, dtype=np.float64)).astype(np.int8)


def requantize_float(acc: np.ndarray, multipliers: np.ndarray, shifts: np.ndarray,
                     output_zero_point: int, rounding: str,
                     scales: np.ndarray | None = None) -> np.ndarray:
    """The profile's ``requantize`` for float64 accumulators within the bound (see module)."""
    return FloatRequantizer(multipliers, shifts, output_zero_point, rounding, scales)(acc)


MAGIC = 1.5 * 2.0**52  # x + MAGIC rounds x (|x| < 2**51) to an integer, ties to even
_TIE_FREE_EPSILON = 2.0**-42


class MagicRounding:
    """The last rounding of ``FloatRequantizer``, the saturation and a table index
    in one float64 addition: ``fl(v + (MAGIC + index))`` is ``MAGIC + index + rne(v)``
    (one correctly rounded sum of integers below 2**53 and ``v``), so the low 32-bit
    word of the result holds ``index + rne(v)``. ``rne`` (ties to even) equals the
    profile's rounding wherever ``v`` is never an exact half-integer:

    - ``tflm``: ``w = floor(acc * m * 2**-31 + 0.5) * 2**-k`` has at most 31
      fraction bits, so a non-tie lies at least ``2**-31`` from a half-integer.
      Multiplying by ``1 + 2**-42`` (folded into ``2**-k``) moves every
      ``|w| < 512`` by less than ``2**-32`` (non-ties stay on their side) and
      moves exact ties away from zero by more than half an ulp (they round away,
      as ``RoundingDivideByPOT``); larger ``|w|`` saturate either way.
    - ``tflite``: ``v = fl(acc * scale)`` (LiteRT's double product). Exact ties
      are looked for at construction (``ties_free``): for each channel and each
      half-integer inside the int8 range, the accumulators next to
      ``(k + 0.5) / scale``; ``build`` returns None if one exists.

    Saturating ``v`` to the integers ``[-128 - zp, 127 - zp]`` before rounding
    equals saturating after (rounding is monotone).
    """

    def __init__(self, rq: FloatRequantizer):
        self.tflm = rq.tflm
        self.scale = rq.scale
        if self.tflm:
            self.post = rq.post * (1.0 + _TIE_FREE_EPSILON)  # exact: a power of two times it
        self.low = -128.0 - rq.zero_point
        self.high = 127.0 - rq.zero_point
        self.zero_point = rq.zero_point

    @classmethod
    def build(cls, rq: FloatRequantizer | None) -> MagicRounding | None:
        """The fused rounding for ``rq`` where it is exact, else None."""
        if rq is None or np.little_endian is False:
            return None
        magic = cls(rq)
        if not magic.tflm and not ties_free(rq.scale, magic.low, magic.high):
            return None
        return magic

    def index_of(self, a: np.ndarray) -> np.ndarray:
        """``MAGIC + (a + 128) * 256 + 128 + zp`` in float64 for int8 ``a``: adding
        the rounded, saturated ``r`` gives the ADD+TANH table index of ``(a, r + zp)``."""
        index = np.multiply(a, 256.0, dtype=np.float64)
        index += MAGIC + 128.0 * 256 + 128.0 + self.zero_point
        return index

    def before_magic(self, acc32: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``v`` of float32 accumulators into ``out`` (float64), saturated."""
        np.multiply(acc32, self.scale, out=out)
        if self.tflm:
            out += 0.5
            np.floor(out, out=out)  # SaturatingRoundingDoublingHighMul: half up (exact)
            out *= self.post
        np.clip(out, self.low, self.high, out=out)
        return out

    def __call__(self, acc32: np.ndarray) -> np.ndarray:
        """The int8 results of float32 accumulators (``FloatRequantizer``'s, exactly)."""
        v = self.before_magic(np.asarray(acc32, dtype=np.float32), np.empty(np.shape(acc32)))
        v += MAGIC + self.zero_point
        return v.view(np.int32)[..., 0::2].astype(np.int8)  # the low word: the result


def ties_free(scales: np.ndarray, low: float, high: float) -> bool:
    """Whether no integer accumulator ``acc`` gives ``fl(acc * scale[c])`` exactly
    ``k + 0.5`` for a half-integer in ``(low, high)``, for any channel ``c``."""
    scales = np.atleast_1d(np.asarray(scales, dtype=np.float64))
    if np.any(scales < 2.0**-20):  # then two accumulators per half-integer may tie
        return False
    halves = np.arange(low, high) + 0.5
    centre = np.rint(halves[:, None] / scales[None, :])
    for offset in (-2.0, -1.0, 0.0, 1.0, 2.0):
        if np.any((centre + offset) * scales == halves[:, None]):
            return False
    return True
