"""The Elman layer in the simulator's numba engine: the numpy engine's loop, compiled.

Two loops, chosen by batch size (``ElmanCompiled.loop_for``):

- ``sequential``: the whole time loop of each sequence in one compiled call, both
  matrix-vector products in int32 (what wins for one or a few sequences: no call
  per step);
- ``batched``: from ``BATCHED_FROM`` sequences, one step of every sequence at a
  time: the products ``in_t @ W_x`` and ``h_{t-1} @ W_h`` in float32 BLAS (exact,
  see ``elman.runtime.compiled``), then one compiled call that requantizes, looks
  up ADD+TANH and writes the new state.

The ADD and TANH of a step are one lookup in the 65,536-entry table of int8
pairs ``(a, r)``, indexed ``(a + 128) * 256 + r + 128`` (``add_tanh_table``).
"""

from __future__ import annotations

import numpy as np
from elman.layers.elman.engine import add_tanh_table
from elman.profiles import get_profile
from elman.quantize.ir import ElmanLayer
from elman.runtime.compiled import (
    BATCHED_FROM,
    INPUT_BLOCK,
    CompiledFC,
    check_loop,
)
from elman.runtime.compiled16 import AddTanh16, CompiledFC16
from elman.runtime.compiled16 import kernels as kernels16
from elman.runtime.compiled_kernels import (
    fully_connected,
    requantize_tflite,
    requantize_tflm,
    requantize_tflm_float,
)
from numba import int32, njit

_jit = njit(cache=True, nogil=True, error_model="numpy")
_inline = njit(cache=True, nogil=True, error_model="numpy", inline="always")


class ElmanCompiled:
    """``run(x_q, h0)``: the layer's new state at every step (see the module docstring)."""

    def __init__(self, layer: ElmanLayer, profile: str):
        arithmetic = get_profile(profile)
        self.units = layer.units
        self.input_fc = CompiledFC.of(layer.input_fc, arithmetic.fully_connected(layer.input_fc))
        self.recurrent_fc = CompiledFC.of(layer.recurrent_fc,
                                          arithmetic.fully_connected(layer.recurrent_fc))
        self.add_tanh = np.ascontiguousarray(add_tanh_table(layer, arithmetic), dtype=np.int8)
        self.tflm = arithmetic.compiled_requantization == "tflm"
        self.blas_exact = self.input_fc.blas_exact and self.recurrent_fc.blas_exact

    def loop_for(self, batch: int) -> str:
        """``batched`` or ``sequential``: the loop ``run`` takes for ``batch`` sequences."""
        return "batched" if batch >= BATCHED_FROM and self.blas_exact else "sequential"

    def run(self, x_q: np.ndarray, h0: np.ndarray, loop: str | None = None) -> np.ndarray:
        """int8 states (B, T, H) after each step of int8 inputs (B, T, D) from states h0
        (B, H). ``loop`` forces one of the two loops (tests)."""
        x_q = np.ascontiguousarray(x_q, dtype=np.int8)
        h0 = np.ascontiguousarray(h0, dtype=np.int8)
        loop = check_loop(loop) or self.loop_for(x_q.shape[0])
        if x_q.shape[0] == 0 or x_q.shape[1] == 0:
            loop = "sequential"  # nothing to loop over
        if loop == "batched":
            if not self.blas_exact:
                raise ValueError("this layer's products can exceed float32's exact range")
            return self._run_batched(x_q, h0)
        batch, steps, _ = x_q.shape
        hs = np.empty((batch, steps, self.units), dtype=np.int8)
        sequential(x_q, h0, *self.input_fc.args(), *self.recurrent_fc.args(), self.add_tanh,
                   self.tflm, hs)
        return hs

    def _run_batched(self, x_q: np.ndarray, h0: np.ndarray) -> np.ndarray:
        """Time-major: per step two float32 BLAS products (exact), ``x_t @ W_x`` and
        ``h_{t-1} @ W_h``, and one compiled call for everything else (``cell_*``)."""
        batch, steps, _ = x_q.shape
        fx, fh = self.input_fc, self.recurrent_fc
        hs = np.empty((batch, steps, self.units), dtype=np.int8)
        as_float = self.tflm and fx.tflm_float and fh.tflm_float
        cell = cell_tflite if not self.tflm else cell_tflm_float if as_float else cell_tflm
        args = (*fx.cell_args(as_float), fx.output_zero_point,
                *fh.cell_args(as_float), fh.output_zero_point, fh.input_zero_point,
                self.add_tanh)
        h32 = [fh.centred32(h0), np.empty((batch, self.units), dtype=np.float32)]  # ping-pong
        acc_x = np.empty((batch, self.units), dtype=np.float32)
        acc_h = np.empty((batch, self.units), dtype=np.float32)
        h8 = np.empty((batch, self.units), dtype=np.int8)
        for t in range(steps):
            if t % INPUT_BLOCK == 0:  # x - zp as float32, time-major, a block of steps
                x32 = fx.centred32(x_q[:, t:t + INPUT_BLOCK].transpose(1, 0, 2))
            np.matmul(x32[t % INPUT_BLOCK], fx.weights_t, out=acc_x)
            np.matmul(h32[t % 2], fh.weights_t, out=acc_h)
            cell(acc_x, acc_h, *args, h8, h32[(t + 1) % 2])
            hs[:, t] = h8
        return hs


class Elman16Compiled:
    """The int16-state (16x8) layer's loop, compiled (:mod:`elman.runtime.compiled16`): one
    sequence at a time, int64 sums (no BLAS loop)."""

    blas_exact = False

    def __init__(self, layer: ElmanLayer, profile: str):
        arithmetic = get_profile(profile)
        self.units = layer.units
        self.args = (*CompiledFC16.of(layer.input_fc, arithmetic).args(),
                     *CompiledFC16.of(layer.recurrent_fc, arithmetic).args(),
                     *AddTanh16.of(arithmetic.add(layer.add), layer.tanh.input,
                                   arithmetic).args())

    def loop_for(self, batch: int) -> str:
        return "sequential"

    def run(self, x_q: np.ndarray, h0: np.ndarray, loop: str | None = None) -> np.ndarray:
        """int16 states (B, T, H) after each step of int16 inputs (B, T, D) from states h0."""
        if check_loop(loop) == "batched":
            raise ValueError("the int16 state has no batched (BLAS) loop")
        x_q = np.ascontiguousarray(x_q, dtype=np.int16)
        h0 = np.ascontiguousarray(h0, dtype=np.int16)
        hs = np.empty((x_q.shape[0], x_q.shape[1], self.units), dtype=np.int16)
        kernels16().sequential16(x_q, h0, *self.args, hs)
        return hs


def Compiled(layer: ElmanLayer, profile: str) -> ElmanCompiled | Elman16Compiled:  # noqa: N802
    """The compiled loop of ``layer``: int8 or int16 state."""
    if layer.state_bits == 16:
        return Elman16Compiled(layer, profile)
    return ElmanCompiled(layer, profile)


@_jit
def sequential(x_q, h0,
               wx, bx, mx, lx, rx, fx, zx_in, zx_out,
               wh, bh, mh, lh, rh, fh, zh_in, zh_out,
               add_tanh, tflm, hs):
    """Every step of every sequence, one sequence at a time: h (B, T, H) from int8 inputs
    (B, T, D) and states ``h0`` (B, H)."""
    batch, steps, dim = x_q.shape
    units = bh.shape[0]
    x16 = np.empty(dim, np.int16)
    h16 = np.empty(units, np.int16)  # h minus the recurrent layer's input zero point
    acc = np.empty(units, np.int32)
    a = np.empty(units, np.int64)
    r = np.empty(units, np.int64)
    for b in range(batch):
        for u in range(units):
            h16[u] = h0[b, u] - zh_in
        for t in range(steps):
            for d in range(dim):
                x16[d] = x_q[b, t, d] - zx_in
            fully_connected(wx, bx, mx, lx, rx, fx, zx_out, tflm, x16, acc, a)
            fully_connected(wh, bh, mh, lh, rh, fh, zh_out, tflm, h16, acc, r)
            for u in range(units):
                h_new = add_tanh[(a[u] + 128) * 256 + r[u] + 128]
                hs[b, t, u] = h_new
                h16[u] = h_new - zh_in


@_inline
def _lookup(index, add_tanh, zh_in, h_out, h32):
    """ADD+TANH: the new state (int8), then as float32 minus the zero point (two loops:
    the byte lookups do not vectorize, the conversion does)."""
    for u in range(index.shape[0]):
        h_out[u] = add_tanh[index[u]]
    for u in range(index.shape[0]):
        h32[u] = h_out[u] - zh_in


# One step of every sequence after its float32 BLAS products (exact integers, without
# bias): ``acc_x`` (B, H) is FC(in), ``acc_h`` (B, H) the previous state times W_h. The
# new state goes to ``h_out`` (int8) and ``h32`` (float32, minus the input zero point:
# the next product's input). One kernel per requantization, each one fused loop over
# the units (what vectorizes best).


@_jit
def cell_tflm(acc_x, acc_h, bx, mx, lx, rx, zx_out, bh, mh, lh, rh, zh_out, zh_in,
              add_tanh, h_out, h32):
    """One step (see above) with TFLM's integer requantization (``mx``, ``mh``: the
    multipliers; ``lx``, ``rx``, ``lh``, ``rh``: the left and right shifts)."""
    batch, units = acc_x.shape
    index = np.empty(units, np.int64)
    for b in range(batch):
        for u in range(units):
            a = requantize_tflm(int32(int32(acc_x[b, u]) + bx[u]), mx[u], lx[u], rx[u], zx_out)
            r = requantize_tflm(int32(int32(acc_h[b, u]) + bh[u]), mh[u], lh[u], rh[u], zh_out)
            index[u] = (a + 128) * 256 + r + 128
        _lookup(index, add_tanh, zh_in, h_out[b], h32[b])


@_jit
def cell_tflm_float(acc_x, acc_h, bx, mx, px, zx_out, bh, mh, ph, zh_out, zh_in,
                    add_tanh, h_out, h32):
    """``cell_tflm`` with ``requantize_tflm_float`` (``mx``, ``mh``: ``m * 2**-31``;
    ``px``, ``ph``: ``2**-right``; biases as float64)."""
    batch, units = acc_x.shape
    index = np.empty(units, np.int64)
    for b in range(batch):
        for u in range(units):
            a = requantize_tflm_float(float(acc_x[b, u]) + bx[u], mx[u], px[u], zx_out)
            r = requantize_tflm_float(float(acc_h[b, u]) + bh[u], mh[u], ph[u], zh_out)
            index[u] = (a + 128) * 256 + r + 128
        _lookup(index, add_tanh, zh_in, h_out[b], h32[b])


@_jit
def cell_tflite(acc_x, acc_h, bx, fx, zx_out, bh, fh, zh_out, zh_in, add_tanh, h_out, h32):
    """``cell_tflm`` with LiteRT's double-precision requantization."""
    batch, units = acc_x.shape
    index = np.empty(units, np.int64)
    for b in range(batch):
        for u in range(units):
            a = requantize_tflite(int32(int32(acc_x[b, u]) + bx[u]), fx[u], zx_out)
            r = requantize_tflite(int32(int32(acc_h[b, u]) + bh[u]), fh[u], zh_out)
            index[u] = (a + 128) * 256 + r + 128
        _lookup(index, add_tanh, zh_in, h_out[b], h32[b])
