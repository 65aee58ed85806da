"""The integer program of a ``QuantizedRNN``, bit-exact, vectorized over a batch.

``Simulator(ir, profile)`` computes, per step and for every sequence of a batch,
exactly the int8 values the chosen interpreter computes (see
``elman.profiles`` for the arithmetic profiles)::

    a  = FC(x; W_x, b)   r = FC(h; W_h)   z = ADD(a, r)   h' = TANH(z)   y = FC(h'; W_y, b_y)

Two engines compute the same values (``engine=``): ``numpy``, the reference
written with the profile's reference arithmetic (this module), and
``numba``, the same program compiled (``elman.runtime.compiled``), several
times faster and the default where numba imports. ``auto`` picks ``numba``
unless the environment variable ``ELMAN_SIMULATOR_ENGINE`` names the other.
Tests and ``elman verify`` prove the two equal, value for value.

In the numpy engine the matrix products run in float BLAS: every product and
partial sum is an integer far below the float's exact range, so the float
result is the exact integer sum.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from elman.profiles import get_profile
from elman.quantize.ir import FullyConnected, QuantizedRNN
from elman.runtime.compiled import CompiledRNN, Layer, numba_available
from elman.runtime.float_exact import (
    MAGIC,
    FloatRequantizer,
    MagicRounding,
    applies,
    max_abs_accumulator,
)

_STEPWISE_INPUT_SIZE = 4096  # batch * units from which FC(x) is computed inside the loop
ENGINES = ("auto", "numpy", "numba")
ENGINE_ENV = "ELMAN_SIMULATOR_ENGINE"


def resolve_engine(engine: str = "auto") -> str:
    """``numpy`` or ``numba`` for ``engine`` (``auto``: the environment's choice, else
    numba where it imports)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown simulator engine {engine!r}; choose one of {ENGINES}")
    if engine == "auto":
        engine = os.environ.get(ENGINE_ENV, "").strip().lower() or "auto"
        if engine not in ENGINES:
            raise ValueError(f"{ENGINE_ENV}={engine!r}: choose one of {ENGINES}")
    if engine == "auto":
        return "numba" if numba_available() else "numpy"
    if engine == "numba" and not numba_available():
        raise ValueError("the numba engine needs the numba package (pip install numba)")
    return engine


@dataclass(frozen=True)
class StepOutputs:
    """int8 results of every step: ``h`` (B, T, H) and ``y`` (B, T, O) or None."""

    h: np.ndarray
    y: np.ndarray | None

    @property
    def batch(self) -> int:
        return int(self.h.shape[0])

    @property
    def steps(self) -> int:
        return int(self.h.shape[1])


class _Dense:
    """One int8 FULLY_CONNECTED, prepared for a profile."""

    def __init__(self, fc: FullyConnected, profile: str):
        self.weights_t = fc.weights.astype(np.float64).T.copy()  # (in, out)
        self.bias = fc.bias.astype(np.float64)
        self.requantization = get_profile(profile).fully_connected(fc)
        self.input_zero_point = int(fc.input.zero_point)
        self.output_zero_point = int(fc.output.zero_point)
        self.multipliers = self.requantization.multipliers
        self.shifts = self.requantization.shifts
        self.profile = profile
        bound = max_abs_accumulator(fc.weights, fc.bias, self.input_zero_point)
        self.float_exact = applies(bound, self.shifts)
        self.has_bias = bool(np.any(self.bias))
        self.scales = self.requantization.scales
        self._float = FloatRequantizer(self.multipliers, self.shifts, self.output_zero_point,
                                       profile, self.scales) if self.float_exact else None
        # float32 BLAS is exact too (every partial sum is an integer below 2**21)
        self._magic = MagicRounding.build(self._float)
        self._weights32 = self.weights_t.astype(np.float32)
        self._bias32 = self.bias.astype(np.float32)

    def accumulate(self, q: np.ndarray) -> np.ndarray:
        """``sum_d w[c, d] * (q[d] - zp_in) + bias[c]``, exact integers in float64."""
        centered = q.astype(np.float64)
        if self.input_zero_point:
            centered -= self.input_zero_point
        acc = centered @ self.weights_t
        if self.has_bias:
            acc += self.bias
        return acc

    def __call__(self, q: np.ndarray) -> np.ndarray:
        if self._magic is not None:
            return self.from_float32(q.astype(np.float32))
        acc = self.accumulate(q)
        if self._float is not None:
            return self._float.into_float(acc).astype(np.int8)
        return self.requantization(acc.astype(np.int64))


    def from_float32(self, q32: np.ndarray) -> np.ndarray:
        """The layer on int8 values held in float32 (only where ``MagicRounding`` applies)."""
        if self.input_zero_point:
            q32 = q32 - np.float32(self.input_zero_point)  # exact: small integers
        acc32 = q32 @ self._weights32
        if self.has_bias:
            acc32 += self._bias32
        return self._magic(acc32)


class Simulator:
    """Bit-exact int8 simulator of a ``QuantizedRNN`` step model.

    ``engine``: ``numpy`` (the reference), ``numba`` (compiled, same values) or
    ``auto`` (see the module docstring); ``self.engine`` is the one in use.
    """

    def __init__(self, ir: QuantizedRNN, profile: str = "tflm", engine: str = "auto"):
        self.ir = ir
        arithmetic = get_profile(profile)
        self.profile = profile
        self.engine = resolve_engine(engine)
        self._input_fc = _Dense(ir.input_fc, profile)
        self._recurrent_fc = _Dense(ir.recurrent_fc, profile)
        self._head = None if ir.head is None else _Dense(ir.head, profile)
        self.tanh_table = arithmetic.tanh_table(ir.tanh.input)
        # ADD then TANH of every (a, r) pair of int8 values: h' = table[(a + 128) * 256 + r + 128]
        z = arithmetic.add(ir.add).table()
        self.add_table = z  # int8 (256, 256): ADD(a, r), indexed [a + 128, r + 128]
        self._add_tanh = self.tanh_table[z.astype(np.int64) + 128].reshape(-1)
        self._h = np.zeros((1, ir.units), dtype=np.int8)
        rec = self._recurrent_fc
        fused = rec.input_zero_point == 0 and not rec.has_bias
        self._magic = MagicRounding.build(rec._float) if fused else None
        self._compiled = self._compile() if self.engine == "numba" else None

    def _compile(self) -> CompiledRNN:
        def layer(fc: FullyConnected, dense: _Dense) -> Layer:
            return Layer.of(fc, dense.requantization)

        ir = self.ir
        return CompiledRNN(layer(ir.input_fc, self._input_fc),
                           layer(ir.recurrent_fc, self._recurrent_fc),
                           None if ir.head is None else layer(ir.head, self._head),
                           self._add_tanh, self.profile)

    # ---- one step ------------------------------------------------------------------------
    def _add_tanh_index(self, a: np.ndarray) -> np.ndarray:
        return (a.astype(np.int64) + 128) * 256 + 128

    def _cell(self, x_q: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        a = self._input_fc(x_q)
        r = self._recurrent_fc(h)
        h_new = self._add_tanh[self._add_tanh_index(a) + r]
        y = None if self._head is None else self._head(h_new)
        return h_new, y

    # ---- streaming API -------------------------------------------------------------------
    def reset(self, batch: int = 1) -> None:
        """Start ``batch`` new sequences from the zero state."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self._h = np.zeros((batch, self.ir.units), dtype=np.int8)

    @property
    def state(self) -> np.ndarray:
        """The current int8 hidden state, (B, H) (a copy)."""
        return self._h.copy()

    def step(self, x_q: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Advance every sequence by one int8 input ``x_q`` (B, D); returns ``(h, y)``."""
        x_q = self._check_inputs(np.asarray(x_q), ndim=2)
        if x_q.shape[0] != self._h.shape[0]:
            raise ValueError(f"step got a batch of {x_q.shape[0]} after reset({self._h.shape[0]})")
        if self._compiled is not None:
            hs, ys = self._compiled.run(x_q[:, None], self._h, loop="sequential")
            self._h = hs[:, 0]
            return self._h.copy(), None if ys is None else ys[:, 0]
        self._h, y = self._cell(x_q, self._h)
        return self._h.copy(), y

    # ---- whole sequences -----------------------------------------------------------------
    def run(self, x_q: np.ndarray) -> StepOutputs:
        """Run int8 inputs (B, T, D) from the zero state; outputs of every step.

        Does not touch the streaming state of ``reset`` / ``step``. ``FC(x)`` of every
        step and ``FC(h')`` of every step are computed outside the time loop; the loop
        holds only the recurrent product, its requantization and one table lookup.
        """
        x_q = self._check_inputs(np.asarray(x_q), ndim=3)
        batch, steps, dim = x_q.shape
        units = self.ir.units
        if self._compiled is not None:
            hs, ys = self._compiled.run(x_q, np.zeros((batch, units), dtype=np.int8))
            return StepOutputs(h=hs, y=ys)
        if steps == 0:
            return StepOutputs(h=np.empty((batch, 0, units), np.int8),
                               y=None if self._head is None else
                               np.empty((batch, 0, self.ir.output_dim), np.int8))
        if self._magic is not None:
            return self._run_float(x_q)
        a = self._input_fc(x_q.reshape(batch * steps, dim)).reshape(batch, steps, units)
        hs = np.empty((batch, steps, units), dtype=np.int8)
        rec = self._recurrent_fc
        a_index = self._add_tanh_index(a)
        h = np.zeros((batch, units), dtype=np.int8)
        for t in range(steps):
            h = self._add_tanh[a_index[:, t] + rec(h)]
            hs[:, t] = h
        ys = None
        if self._head is not None:
            ys = self._head(hs.reshape(batch * steps, units)).reshape(batch, steps, -1)
        return StepOutputs(h=hs, y=ys)

    def _run_float(self, x_q: np.ndarray) -> StepOutputs:
        """``run`` time-major in float buffers: FC(x), the loop, FC(h') (see below)."""
        batch, steps, dim = x_q.shape
        units = self.ir.units
        history = self._recurrence_float(self._input_index(x_q.transpose(1, 0, 2)), steps, batch)
        h_t = history[1:]
        ys = None
        if self._head is not None:
            flat = h_t.reshape(steps * batch, units)
            head = self._head
            y_t = head.from_float32(flat) if head._magic is not None else head(flat.astype(np.int8))
            ys = y_t.reshape(steps, batch, -1).transpose(1, 0, 2).copy()
        hs = h_t.transpose(1, 0, 2).astype(np.int8)
        return StepOutputs(h=hs, y=ys)

    def _input_index(self, x_t: np.ndarray):
        """``MAGIC`` plus the ADD+TANH index of ``a = FC(x)`` at step ``t``, as a function
        of ``t`` returning (B, H) float64, for int8 inputs ``x_t`` (T, B, D).

        Computed step by step in the loop where the input layer has a ``MagicRounding``
        and a step is large (buffers that stay in cache), else all at once (fewer calls).
        """
        fc, rounding = self._input_fc, self._magic
        steps, batch, dim = x_t.shape
        units = self.ir.units
        if fc._magic is None or batch * units < _STEPWISE_INPUT_SIZE:
            a = fc(x_t.reshape(steps * batch, dim)).reshape(steps, batch, units)
            return rounding.index_of(a).__getitem__
        x32 = x_t.astype(np.float32)
        if fc.input_zero_point:
            x32 -= np.float32(fc.input_zero_point)  # exact: small integers
        offset = float(rounding.index_of(np.zeros(1, dtype=np.int8))[0])
        acc32 = np.empty((batch, units), dtype=np.float32)
        index = np.empty((batch, units))

        def at(t: int) -> np.ndarray:
            np.matmul(x32[t], fc._weights32, out=acc32)
            if fc.has_bias:
                np.add(acc32, fc._bias32, out=acc32)
            fc._magic.before_magic(acc32, index)
            np.add(index, MAGIC + fc._magic.zero_point, out=index)  # rounded, + zp: a
            np.subtract(index, MAGIC, out=index)  # exact
            np.multiply(index, 256.0, out=index)
            return np.add(index, offset, out=index)

        return at

    def _recurrence_float(self, input_index, steps: int, batch: int) -> np.ndarray:
        """The time loop in preallocated float buffers, exact (see ``float_exact``).

        Per step: the recurrent product (float32 is exact: every partial sum is an
        integer below 2**21), the requantization in float64 up to the last rounding,
        the saturation, and one addition of ``MAGIC + index`` that rounds to the
        nearest integer and carries FC(x) and the output zero point into the low
        bits of the float64 (``float_exact.MagicRounding``), which indexes the
        ADD+TANH table directly.
        """
        units = self.ir.units
        weights_t = self._recurrent_fc.weights_t.astype(np.float32)
        rounding = self._magic
        table = self._add_tanh.astype(np.float32)
        history = np.zeros((steps + 1, batch, units), dtype=np.float32)  # h of steps -1..T-1
        acc32 = np.empty((batch, units), dtype=np.float32)
        acc = np.empty((batch, units))
        bits = acc.view(np.int64)  # MAGIC + index: the bits of MAGIC plus the index
        magic_bits = np.float64(MAGIC).view(np.int64)
        index = np.empty((batch, units), dtype=np.intp)
        for t in range(steps):
            np.matmul(history[t], weights_t, out=acc32)
            rounding.before_magic(acc32, acc)
            acc += input_index(t)
            np.subtract(bits, magic_bits, out=index)
            np.take(table, index, out=history[t + 1])
        return history

    def run_tokens(self, ids: np.ndarray) -> StepOutputs:
        """Run token ids (B, T) of a text model through its int8 embedding table."""
        return self.run(embed_tokens(self.ir, ids))

    def _check_inputs(self, x_q: np.ndarray, ndim: int) -> np.ndarray:
        if x_q.dtype != np.int8:
            raise ValueError(
                f"inputs must be int8 (quantized with ir.input_quant), got {x_q.dtype}")
        if x_q.ndim != ndim or x_q.shape[-1] != self.ir.input_dim:
            want = "(B, T, D)" if ndim == 3 else "(B, D)"
            raise ValueError(f"inputs must have shape {want} with D = {self.ir.input_dim}, "
                             f"got {x_q.shape}")
        return x_q


def embed_tokens(ir: QuantizedRNN, ids: np.ndarray) -> np.ndarray:
    """int8 embedding rows (B, T, D) of token ids (B, T) of a text model."""
    if ir.embedding is None:
        raise ValueError("this model has no embedding table (not a text model)")
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer) or ids.ndim != 2:
        raise ValueError(f"token ids must be an integer array (B, T), got {ids.dtype} {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= ir.vocab_size):
        raise ValueError(f"token ids must be in [0, {ir.vocab_size}), "
                         f"got [{ids.min()}, {ids.max()}]")
    return ir.embedding[ids]
