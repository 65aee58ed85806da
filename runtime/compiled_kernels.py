"""Compiled pieces every layer kind's numba loop uses (imported only when the engine runs).

Each requantization is written per value, as the C kernels compute it; the
profile is chosen outside every inner loop so that LLVM vectorizes them.
``fully_connected`` is one layer in int32 sums (what a loop over one sequence
uses); ``requantize_rows`` requantizes float32 BLAS products of many rows.

numba's on-disk cache does not notice when a function here changes under a
kernel of another module that inlines it: after editing this file, delete the
``*.nbi``/``*.nbc`` files in ``layers/*/__pycache__`` (a fresh install has none).
"""

from __future__ import annotations

import numpy as np
from numba import int32, int64, njit

_jit = njit(cache=True, nogil=True, error_model="numpy")
_inline = njit(cache=True, nogil=True, error_model="numpy", inline="always")


@_inline
def requantize_tflm(acc, multiplier, left, right, zero_point):
    """TFLM ``MultiplyByQuantizedMultiplier`` of an int32 ``acc``, + zp, saturated to int8.

    ``left = max(shift, 0)``, ``right = max(-shift, 0)``. ``x = acc << left``
    wrapped to int32; ``SaturatingRoundingDoublingHighMul(x, m)`` is
    ``(x * m + nudge) / 2**31`` with C's division toward zero (``nudge`` is
    ``2**30`` for a non-negative product, ``1 - 2**30`` otherwise; the overflow
    case needs ``m == INT32_MIN``, and ``0 <= m < 2**31``); then
    ``RoundingDivideByPOT(high, right)``: ``(high >> right)`` plus one where the
    remainder exceeds half (half counts for negative values: ties away from zero).
    """
    x = int64(int32(int64(acc) << left))
    ab = x * multiplier
    nudged = ab + (int64(1 << 30) if ab >= 0 else int64(1 - (1 << 30)))
    high = (nudged + ((nudged >> 63) & int64((1 << 31) - 1))) >> 31  # C: nudged / 2**31
    mask = (int64(1) << right) - 1
    threshold = (mask >> 1) - (high >> 63)  # + 1 for negative high
    v = (high >> right) + (int64(1) if (high & mask) > threshold else int64(0)) + zero_point
    return min(max(v, -128), 127)


@_inline
def requantize_tflm_float(acc, multiplier_scale, post, zero_point):
    """``requantize_tflm`` in float64, for layers where it is exact (``Layer.tflm_float``:
    no left shift and ``|acc| < 2**22``): ``v = acc * (m * 2**-31)`` is exact
    (``|acc * m| < 2**53``, then a power of two); ``floor(v + 0.5)`` is
    ``SaturatingRoundingDoublingHighMul`` for either sign (``v + 0.5`` needs at most
    22 + 31 bits); times ``post = 2**-right``, exact; the last rounding as ``tflite``'s,
    ties away from zero (``RoundingDivideByPOT``)."""
    v = min(max(np.floor(acc * multiplier_scale + 0.5) * post, -1024.0), 1024.0)
    whole = np.trunc(v)
    r = int64(whole + np.trunc(2.0 * (v - whole))) + zero_point
    return min(max(r, -128), 127)


@_inline
def requantize_tflite(acc, scale, zero_point):
    """LiteRT ``BUILTIN_REF``: ``std::round(double(acc) * scale)``, exactly (ties away
    from zero: ``trunc(v) + trunc(2 * (v - trunc(v)))``, both steps exact), + zp,
    saturated to int8."""
    v = min(max(float(acc) * scale, -1024.0), 1024.0)
    whole = np.trunc(v)
    r = int64(whole + np.trunc(2.0 * (v - whole))) + zero_point
    return min(max(r, -128), 127)


@_inline
def fully_connected(weights, bias, multiplier, left, right, scale, zero_point, tflm, v, acc,
                    out):
    """``out = requantize(weights @ v + bias)``: int32 products and sums (C's wrap)."""
    out_dim, in_dim = weights.shape
    for c in range(out_dim):
        s = int32(0)
        for d in range(in_dim):
            s = int32(s + int32(weights[c, d]) * int32(v[d]))
        acc[c] = int32(s + bias[c])
    if tflm:
        for c in range(out_dim):
            out[c] = requantize_tflm(acc[c], multiplier[c], left[c], right[c], zero_point)
    else:
        for c in range(out_dim):
            out[c] = requantize_tflite(acc[c], scale[c], zero_point)


TFLM, TFLM_FLOAT, TFLITE = 0, 1, 2  # how a layer requantizes (``CompiledFC.packed``)


@_jit
def requantize_rows(acc_y, fy, iy, zy_out, mode_y, y_out):
    """int8 outputs (N, O) of a layer from its BLAS products (N, O), exact integers
    without bias, requantized in ``mode_y``. ``iy`` rows: bias, multiplier, left,
    right; ``fy`` rows: bias, ``m * 2**-31``, ``2**-right``, scale."""
    batch, out_dim = acc_y.shape
    if mode_y == TFLM:
        for b in range(batch):
            for o in range(out_dim):
                y_out[b, o] = requantize_tflm(int32(int32(acc_y[b, o]) + iy[0, o]), iy[1, o],
                                              iy[2, o], iy[3, o], zy_out)
    elif mode_y == TFLM_FLOAT:
        for b in range(batch):
            for o in range(out_dim):
                y_out[b, o] = requantize_tflm_float(float(acc_y[b, o]) + fy[0, o], fy[1, o],
                                                    fy[2, o], zy_out)
    else:
        for b in range(batch):
            for o in range(out_dim):
                y_out[b, o] = requantize_tflite(int32(int32(acc_y[b, o]) + iy[0, o]), fy[3, o],
                                                zy_out)


@_jit
def fully_connected_rows(q, weights, bias, multiplier, left, right, scale, zero_point_in,
                         zero_point_out, tflm, out):
    """int8 outputs (N, O) of int8 inputs (N, D), int32 sums (where BLAS is not exact)."""
    rows, dim = q.shape
    out_dim = bias.shape[0]
    v = np.empty(dim, np.int16)
    acc = np.empty(out_dim, np.int32)
    y = np.empty(out_dim, np.int64)
    for n in range(rows):
        for d in range(dim):
            v[d] = q[n, d] - zero_point_in
        fully_connected(weights, bias, multiplier, left, right, scale, zero_point_out, tflm,
                        v, acc, y)
        for o in range(out_dim):
            out[n, o] = y[o]
