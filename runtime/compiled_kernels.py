"""The compiled loops of the ``numba`` engine (imported by ``compiled`` only when used).

Each requantization is written per value, as the C kernels compute it; the
profile is chosen outside every inner loop so that LLVM vectorizes them. The
ADD and TANH of a step are one lookup in the 65,536-entry table of int8 pairs
``(FC(x), FC(h))``, indexed ``(a + 128) * 256 + r + 128``.
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
def _layer(weights, bias, multiplier, left, right, scale, zero_point, tflm, v, acc, out):
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


@_jit
def sequential(x_q, h0,
               wx, bx, mx, lx, rx, fx, zx_in, zx_out,
               wh, bh, mh, lh, rh, fh, zh_in, zh_out,
               wy, by, my, ly, ry, fy, zy_in, zy_out,
               add_tanh, tflm, hs, ys):
    """Every step of every sequence, one sequence at a time: h (B, T, H) and y (B, T, O)
    from int8 inputs (B, T, D) and states ``h0`` (B, H)."""
    batch, steps, dim = x_q.shape
    units = bh.shape[0]
    out_dim = by.shape[0]
    x16 = np.empty(dim, np.int16)
    h16 = np.empty(units, np.int16)  # h minus the recurrent layer's input zero point
    hy16 = np.empty(units, np.int16)  # h minus the head's
    acc = np.empty(units, np.int32)
    acc_y = np.empty(out_dim, np.int32)
    a = np.empty(units, np.int64)
    r = np.empty(units, np.int64)
    y = np.empty(out_dim, np.int64)
    for b in range(batch):
        for u in range(units):
            h16[u] = h0[b, u] - zh_in
        for t in range(steps):
            for d in range(dim):
                x16[d] = x_q[b, t, d] - zx_in
            _layer(wx, bx, mx, lx, rx, fx, zx_out, tflm, x16, acc, a)
            _layer(wh, bh, mh, lh, rh, fh, zh_out, tflm, h16, acc, r)
            for u in range(units):
                h_new = add_tanh[(a[u] + 128) * 256 + r[u] + 128]
                hs[b, t, u] = h_new
                h16[u] = h_new - zh_in
                hy16[u] = h_new - zy_in
            if out_dim:
                _layer(wy, by, my, ly, ry, fy, zy_out, tflm, hy16, acc_y, y)
                for o in range(out_dim):
                    ys[b, t, o] = y[o]


TFLM, TFLM_FLOAT, TFLITE = 0, 1, 2  # how the head requantizes (``Layer.packed``)


@_jit
def head_rows(acc_y, fy, iy, zy_out, mode_y, y_out):
    """The head's int8 outputs (B, O) from its BLAS products (B, O), exact integers
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


@_inline
def _lookup(index, add_tanh, zh_in, h_out, h32):
    """ADD+TANH: the new state (int8), then as float32 minus the zero point (two loops:
    the byte lookups do not vectorize, the conversion does)."""
    for u in range(index.shape[0]):
        h_out[u] = add_tanh[index[u]]
    for u in range(index.shape[0]):
        h32[u] = h_out[u] - zh_in


# One step of every sequence after its float32 BLAS products (exact integers, without
# bias): ``acc_x`` (B, H) is FC(x); ``acc_hy`` (B, H + O) is the previous state times
# ``[W_h | W_y]``, i.e. FC(h) of this step and the head's product of the previous
# state, whose y goes to ``y_previous`` (B, O; skipped when it has no rows). The new
# state goes to ``h_out`` (int8) and ``h32`` (float32, minus the input zero point:
# the next product's input). One kernel per requantization, each one fused loop
# over the units (what vectorizes best).


@_jit
def cell_tflm(acc_x, acc_hy, bx, mx, lx, rx, zx_out, bh, mh, lh, rh, zh_out, zh_in,
              fy, iy, zy_out, mode_y, add_tanh, y_previous, h_out, h32):
    """One step (see above) with TFLM's integer requantization (``mx``, ``mh``: the
    multipliers; ``lx``, ``rx``, ``lh``, ``rh``: the left and right shifts)."""
    batch, units = acc_x.shape
    index = np.empty(units, np.int64)
    for b in range(batch):
        for u in range(units):
            a = requantize_tflm(int32(int32(acc_x[b, u]) + bx[u]), mx[u], lx[u], rx[u], zx_out)
            r = requantize_tflm(int32(int32(acc_hy[b, u]) + bh[u]), mh[u], lh[u], rh[u],
                                zh_out)
            index[u] = (a + 128) * 256 + r + 128
        _lookup(index, add_tanh, zh_in, h_out[b], h32[b])
    if y_previous.shape[0]:
        head_rows(acc_hy[:, units:], fy, iy, zy_out, mode_y, y_previous)


@_jit
def cell_tflm_float(acc_x, acc_hy, bx, mx, px, zx_out, bh, mh, ph, zh_out, zh_in,
                    fy, iy, zy_out, mode_y, add_tanh, y_previous, h_out, h32):
    """``cell_tflm`` with ``requantize_tflm_float`` (``mx``, ``mh``: ``m * 2**-31``;
    ``px``, ``ph``: ``2**-right``; biases as float64)."""
    batch, units = acc_x.shape
    index = np.empty(units, np.int64)
    for b in range(batch):
        for u in range(units):
            a = requantize_tflm_float(float(acc_x[b, u]) + bx[u], mx[u], px[u], zx_out)
            r = requantize_tflm_float(float(acc_hy[b, u]) + bh[u], mh[u], ph[u], zh_out)
            index[u] = (a + 128) * 256 + r + 128
        _lookup(index, add_tanh, zh_in, h_out[b], h32[b])
    if y_previous.shape[0]:
        head_rows(acc_hy[:, units:], fy, iy, zy_out, mode_y, y_previous)


@_jit
def cell_tflite(acc_x, acc_hy, bx, fx, zx_out, bh, fh, zh_out, zh_in,
                fy, iy, zy_out, mode_y, add_tanh, y_previous, h_out, h32):
    """``cell_tflm`` with LiteRT's double-precision requantization."""
    batch, units = acc_x.shape
    index = np.empty(units, np.int64)
    for b in range(batch):
        for u in range(units):
            a = requantize_tflite(int32(int32(acc_x[b, u]) + bx[u]), fx[u], zx_out)
            r = requantize_tflite(int32(int32(acc_hy[b, u]) + bh[u]), fh[u], zh_out)
            index[u] = (a + 128) * 256 + r + 128
        _lookup(index, add_tanh, zh_in, h_out[b], h32[b])
    if y_previous.shape[0]:
        head_rows(acc_hy[:, units:], fy, iy, zy_out, mode_y, y_previous)
