"""Compiled 16x8 kernels (imported only when the numba engine runs an int16 state; see
:mod:`elman.runtime.compiled16`)."""

from __future__ import annotations

import numpy as np
from numba import int32, int64, njit

_jit = njit(cache=True, nogil=True, error_model="numpy")
_inline = njit(cache=True, nogil=True, error_model="numpy", inline="always")

INT16_MIN, INT16_MAX = -32768, 32767


@_inline
def _saturate16(v):
    return min(max(v, INT16_MIN), INT16_MAX)


@_inline
def requantize16(acc, reduced, total, scale, tflm):
    """The 16x8 FULLY_CONNECTED epilogue of an int64 ``acc`` (output zero point 0).

    ``tflm``: TFLite Micro's int64 ``MultiplyByQuantizedMultiplier``,
    ``(acc * reduced + 2**(total - 1)) >> total`` kept as an int32, then saturated;
    else LiteRT's ``std::round(double(acc) * scale)`` (ties away from zero, exactly:
    ``trunc(v) + trunc(2 * (v - trunc(v)))``), saturated."""
    if tflm:
        v = (acc * reduced + (int64(1) << (total - 1))) >> total
        return _saturate16(int64(int32(v)))
    f = min(max(float(acc) * scale, -262144.0), 262144.0)
    whole = np.trunc(f)
    return _saturate16(int64(whole + np.trunc(2.0 * (f - whole))))


@_inline
def fully_connected16(weights, bias, reduced, total, scale, tflm, v, out):
    """``out = requantize16(weights @ v + bias)``: exact int64 sums."""
    out_dim, in_dim = weights.shape
    for c in range(out_dim):
        s = bias[c]
        for d in range(in_dim):
            s += weights[c, d] * int64(v[d])
        out[c] = requantize16(s, reduced[c], total[c], scale[c], tflm)


@_inline
def add_output(x, multiplier, right):
    """gemmlowp's ``SaturatingRoundingDoublingHighMul`` then ``RoundingDivideByPOT`` of
    an int32 ``x`` (``compiled_kernels.requantize_tflm`` without the left shift),
    saturated to int16."""
    ab = int64(x) * multiplier
    nudged = ab + (int64(1 << 30) if ab >= 0 else int64(1 - (1 << 30)))
    high = (nudged + ((nudged >> 63) & int64((1 << 31) - 1))) >> 31  # C: nudged / 2**31
    mask = (int64(1) << right) - 1
    threshold = (mask >> 1) - (high >> 63)
    v = (high >> right) + (int64(1) if (high & mask) > threshold else int64(0))
    return _saturate16(v)


@_jit
def sequential16(x_q, h0,
                 wx, bx, nx, tx, fx, tflm_x,
                 wh, bh, nh, th, fh, tflm_h,
                 first1, first2, out_multiplier, out_right, tanh, hs):
    """Every step of every sequence: int16 states (B, T, H) from int16 inputs (B, T, D)
    and states ``h0`` (B, H)."""
    batch, steps, _ = x_q.shape
    units = bh.shape[0]
    h = np.empty(units, np.int64)
    a = np.empty(units, np.int64)
    r = np.empty(units, np.int64)
    for b in range(batch):
        for u in range(units):
            h[u] = h0[b, u]
        for t in range(steps):
            fully_connected16(wx, bx, nx, tx, fx, tflm_x, x_q[b, t], a)
            fully_connected16(wh, bh, nh, th, fh, tflm_h, h, r)
            for u in range(units):
                s = int32(first1[a[u] + 32768] + first2[r[u] + 32768])  # C's int32 sum
                z = add_output(s, out_multiplier, out_right)
                h[u] = tanh[z + 32768]
                hs[b, t, u] = h[u]


@_jit
def fully_connected16_rows(q, weights, bias, reduced, total, scale, tflm, out):
    """int16 outputs (N, O) of int16 inputs (N, D)."""
    out_dim = bias.shape[0]
    y = np.empty(out_dim, np.int64)
    for n in range(q.shape[0]):
        fully_connected16(weights, bias, reduced, total, scale, tflm, q[n], y)
        for o in range(out_dim):
            out[n, o] = y[o]
