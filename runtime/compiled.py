"""The simulator's ``numba`` engine: the same integer program, compiled.

``Simulator`` has two engines that compute the same int8 values:

``numpy``
    The reference: the profile's arithmetic (``elman.profiles``) on whole
    arrays, one numpy call per operator and step (see ``simulator.py``).
``numba``
    This module. The requantization of every FULLY_CONNECTED is written out once
    more below, per value, as the C kernels do it: in int64 for ``tflm``
    (``MultiplyByQuantizedMultiplier``, gemmlowp's double rounding) and in
    LiteRT's double precision for ``tflite`` (``std::round(double(acc) * scale)``).
    The ADD and the TANH come in as one table of the 65,536 int8 pairs
    ``(FC(x), FC(h))``, built by the profile, so their rounding is not
    written twice. Nothing is approximated and no bound is assumed.

Two loops, chosen by batch size (``CompiledRNN.loop_for``):

- ``sequential``: the whole time loop of each sequence in one compiled call, the
  three matrix-vector products in int32 (what wins for one or a few sequences:
  no call per step);
- ``batched``: from ``BATCHED_FROM`` sequences, one step of every sequence at a
  time. The products run in float32 BLAS, ``x_t @ W_x`` and ``h_{t-1} @ [W_h | W_y]``
  (this step's recurrent product and the previous step's head in one call). That
  is exact: the inputs are small integers and every partial sum is an integer
  below ``2**24``, checked per layer from its weights (``max_abs_product``;
  otherwise ``sequential`` runs). One compiled call per step then requantizes,
  looks up ADD+TANH and writes the new state.

For ``tflm`` the batched loop uses ``requantize_tflm_float`` where it is exact (no
left shift, ``|acc| < 2**22``: ``Layer.tflm_float``), the integer form elsewhere.

``tests/test_simulator_engines.py`` checks the engines against each other on
random models (1 to 300 units, extreme scales and zero points, both profiles,
both loops) and the compiled engine against LiteRT and TFLite Micro directly.
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
class Layer:
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

    @classmethod
    def of(cls, fc: FullyConnected, requantization: Requantization) -> Layer:
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
        )

    @classmethod
    def empty(cls, in_dim: int) -> Layer:
        z64 = np.zeros(0, dtype=np.int64)
        return cls(np.zeros((0, in_dim), np.int16), np.zeros((in_dim, 0), np.float32),
                   np.zeros(0, np.int32), z64, z64, z64, np.zeros(0), 0, 0, True, True)

    def args(self) -> tuple:
        """What ``_sequential`` reads of the layer."""
        return (self.weights, self.bias, self.multiplier, self.left, self.right, self.scale,
                self.input_zero_point, self.output_zero_point)

    def cell_args(self, tflm: bool, as_float: bool) -> tuple:
        """What the ``cell_*`` kernel of the profile reads of an input or recurrent layer."""
        if not tflm:
            return self.bias, self.scale
        if as_float:
            return (self.bias.astype(np.float64), self.multiplier * 2.0**-31,
                    np.ldexp(1.0, -self.right))
        return self.bias, self.multiplier, self.left, self.right

    def packed(self, tflm: bool) -> tuple:
        """What ``compiled_kernels.head_rows`` reads of the head: ``(params_f, params_i,
        mode)``, the per-channel parameters packed in rows."""
        from elman.runtime.compiled_kernels import TFLITE, TFLM, TFLM_FLOAT

        params_f = np.ascontiguousarray(np.stack([
            self.bias.astype(np.float64), self.multiplier * 2.0**-31,
            np.ldexp(1.0, -self.right), self.scale]).reshape(4, -1))
        params_i = np.ascontiguousarray(np.stack([
            self.bias.astype(np.int64), self.multiplier, self.left, self.right]).reshape(4, -1))
        mode = TFLITE if not tflm else (TFLM_FLOAT if self.tflm_float else TFLM)
        return params_f, params_i, mode

    def centred32(self, q: np.ndarray) -> np.ndarray:
        """int8 inputs minus the input zero point, as float32 (exact small integers)."""
        c = q.astype(np.float32)
        if self.input_zero_point:
            c -= np.float32(self.input_zero_point)
        return c


class CompiledRNN:
    """The ``numba`` engine for one model and profile (see the module docstring)."""

    def __init__(self, input_fc: Layer, recurrent_fc: Layer, head: Layer | None,
                 add_tanh: np.ndarray, profile: str):
        self.input_fc, self.recurrent_fc, self.head = input_fc, recurrent_fc, head
        self.add_tanh = np.ascontiguousarray(add_tanh, dtype=np.int8).reshape(-1)
        self.tflm = profile == "tflm"
        self.units = int(recurrent_fc.bias.shape[0])
        # the batched loop feeds the head the recurrent layer's centred state
        self.blas_exact = input_fc.blas_exact and recurrent_fc.blas_exact and (
            head is None or (head.blas_exact
                             and head.input_zero_point == recurrent_fc.input_zero_point))

    def loop_for(self, batch: int) -> str:
        """``batched`` or ``sequential``: the loop ``run`` takes for ``batch`` sequences."""
        return "batched" if batch >= BATCHED_FROM and self.blas_exact else "sequential"

    def run(self, x_q: np.ndarray, h0: np.ndarray, loop: str | None = None
            ) -> tuple[np.ndarray, np.ndarray | None]:
        """int8 inputs (B, T, D) from int8 states ``h0`` (B, H): every h (B, T, H) and y
        (B, T, O) or None. ``loop`` forces one of the two loops (tests)."""
        x_q = np.ascontiguousarray(x_q, dtype=np.int8)
        h0 = np.ascontiguousarray(h0, dtype=np.int8)
        loop = loop or self.loop_for(x_q.shape[0])
        if x_q.shape[0] == 0 or x_q.shape[1] == 0:
            loop = "sequential"  # nothing to loop over
        if loop == "batched":
            if not self.blas_exact:
                raise ValueError("this model's products can exceed float32's exact range")
            return self._run_batched(x_q, h0)
        if loop != "sequential":
            raise ValueError(f"unknown loop {loop!r}")
        return self._run_sequential(x_q, h0)

    def _run_sequential(self, x_q, h0):
        batch, steps, _ = x_q.shape
        hs = np.empty((batch, steps, self.units), dtype=np.int8)
        head = self.head if self.head is not None else Layer.empty(self.units)
        ys = np.empty((batch, steps, head.bias.shape[0]), dtype=np.int8)
        _kernels().sequential(x_q, h0, *self.input_fc.args(), *self.recurrent_fc.args(),
                              *head.args(), self.add_tanh, self.tflm, hs, ys)
        return hs, (ys if self.head is not None else None)

    def _run_batched(self, x_q, h0):
        """Time-major: per step two float32 BLAS products (exact), ``x_t @ W_x`` and
        ``h_{t-1} @ [W_h | W_y]`` (the recurrent product and the previous step's head
        in one call), and one compiled call for everything else
        (``compiled_kernels.cell_*``); after the loop, the last step's head."""
        k = _kernels()
        batch, steps, _ = x_q.shape
        units = self.units
        fx, fh, head = self.input_fc, self.recurrent_fc, self.head or Layer.empty(units)
        out_dim = head.bias.shape[0]
        hs = np.empty((batch, steps, units), dtype=np.int8)
        ys = np.empty((batch, steps, out_dim), dtype=np.int8)
        fy_f, fy_i, mode_y = head.packed(self.tflm)
        w_hy = np.ascontiguousarray(np.concatenate([fh.weights_t, head.weights_t], axis=1))
        as_float = self.tflm and fx.tflm_float and fh.tflm_float
        cell = (k.cell_tflite if not self.tflm else
                k.cell_tflm_float if as_float else k.cell_tflm)
        args = (*fx.cell_args(self.tflm, as_float), fx.output_zero_point,
                *fh.cell_args(self.tflm, as_float), fh.output_zero_point, fh.input_zero_point,
                fy_f, fy_i, head.output_zero_point, mode_y, self.add_tanh)
        h32 = [fh.centred32(h0), np.empty((batch, units), dtype=np.float32)]  # ping-pong
        acc_x = np.empty((batch, units), dtype=np.float32)
        acc_hy = np.empty((batch, units + out_dim), dtype=np.float32)
        no_rows = ys[:0, 0]
        h8 = np.empty((batch, units), dtype=np.int8)
        for t in range(steps):
            if t % INPUT_BLOCK == 0:  # x - zp as float32, time-major, a block of steps
                x32 = fx.centred32(x_q[:, t:t + INPUT_BLOCK].transpose(1, 0, 2))
            np.matmul(x32[t % INPUT_BLOCK], fx.weights_t, out=acc_x)
            np.matmul(h32[t % 2], w_hy, out=acc_hy)
            cell(acc_x, acc_hy, *args, ys[:, t - 1] if t else no_rows,
                 h8, h32[(t + 1) % 2])
            hs[:, t] = h8
        if out_dim and steps:
            acc_y = np.matmul(h32[steps % 2], head.weights_t)
            k.head_rows(acc_y, fy_f, fy_i, head.output_zero_point, mode_y, ys[:, steps - 1])
        return hs, (ys if self.head is not None else None)


def _kernels():
    """The compiled loops (numba is imported here, on first use, and compiles or loads
    them from its on-disk cache)."""
    from elman.runtime import compiled_kernels

    return compiled_kernels
