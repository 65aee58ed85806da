"""Fixed-point primitives shared by the IR, the simulator and the C generator.

Only the multiplier derivation lives here for now; the runtime stage adds the
requantize / add / tanh primitives of each arithmetic profile beside it.
"""

from __future__ import annotations

import math

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def round_half_away(x: float) -> int:
    """``std::round``: ties away from zero (Python's ``round`` ties to even)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: ``real ~= multiplier * 2**(shift - 31)``.

    Returns ``(multiplier, shift)`` with ``multiplier`` in ``[2**30, 2**31 - 1]``
    (or 0) and ``shift`` the signed left shift. Derived in double precision,
    exactly as ``tensorflow/lite/kernels/internal/quantization_util.cc``:
    ``frexp``, ``round(q * 2**31)`` with ties away from zero, the
    ``q_fixed == 2**31`` carry, and flushing to zero below ``2**-31``.
    """
    if real_multiplier == 0.0:
        return 0, 0
    if real_multiplier < 0 or not math.isfinite(real_multiplier):
        raise ValueError(f"multiplier must be finite and non-negative, got {real_multiplier!r}")
    q, shift = math.frexp(real_multiplier)
    q_fixed = round_half_away(q * (1 << 31))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    return int(q_fixed), int(shift)
