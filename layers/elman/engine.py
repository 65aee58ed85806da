"""The Elman layer in the simulator's numpy engine: a whole input sequence at once.

``FC(in)`` of every step is computed outside the time loop; the loop holds only
the recurrent product, its requantization and one lookup in the 65,536-entry
ADD+TANH table of int8 pairs ``(a, r)`` (``h' = table[(a + 128) * 256 + r + 128]``,
built from the profile's ADD and TANH, so their rounding is the profile's).

Where the recurrent layer's requantization is exact in float64 (``float_exact``)
the loop runs time-major in float buffers, with the last rounding, the
saturation and the table index fused into one float64 addition
(``MagicRounding``); otherwise with the profile's integer requantization.
"""

from __future__ import annotations

import numpy as np
from elman.profiles import get_profile
from elman.profiles.base import Profile
from elman.quantize.ir import ElmanLayer
from elman.runtime.fc_engine import FullyConnectedEngine
from elman.runtime.float_exact import MAGIC, MagicRounding

STEPWISE_INPUT_SIZE = 4096  # batch * units from which FC(x) is computed inside the loop


def add_tanh_table(layer: ElmanLayer, arithmetic: Profile) -> np.ndarray:
    """int8 (65536,): ``TANH(ADD(a, r))`` of every int8 pair, at ``(a + 128) * 256 + r + 128``."""
    tanh = arithmetic.tanh_table(layer.tanh.input)
    return tanh[arithmetic.add(layer.add).table().astype(np.int64) + 128].reshape(-1)


class ElmanEngine:
    """``run(x_q, h0)``: the layer's new state at every step, for int8 inputs."""

    def __init__(self, layer: ElmanLayer, profile: str):
        arithmetic = get_profile(profile)
        self.units = layer.units
        self.input_fc = FullyConnectedEngine(layer.input_fc, arithmetic)
        self.recurrent_fc = FullyConnectedEngine(layer.recurrent_fc, arithmetic)
        self.int16 = Int16Loop(layer, arithmetic) if layer.state_bits == 16 else None
        if self.int16 is not None:
            self.magic = None
            return
        self.add_tanh = add_tanh_table(layer, arithmetic)
        rec = self.recurrent_fc
        fused = rec.input_zero_point == 0 and not rec.has_bias
        self.magic = MagicRounding.build(rec.float_requantizer) if fused else None

    def run(self, x_q: np.ndarray, h0: np.ndarray) -> np.ndarray:
        """int8 states (B, T, H) after each step of int8 inputs (B, T, D) from states h0 (B, H)."""
        batch, steps, dim = x_q.shape
        if self.int16 is not None:
            a = self.input_fc(x_q.reshape(batch * steps, dim)).reshape(batch, steps, self.units)
            return self.int16.run(a, h0, self.recurrent_fc)
        if steps == 0:
            return np.empty((batch, 0, self.units), np.int8)
        if self.magic is not None:
            return self._run_float(x_q, h0)
        a = self.input_fc(x_q.reshape(batch * steps, dim)).reshape(batch, steps, self.units)
        a_index = (a.astype(np.int64) + 128) * 256 + 128
        hs = np.empty((batch, steps, self.units), dtype=np.int8)
        h = np.asarray(h0, dtype=np.int8)
        for t in range(steps):
            h = self.add_tanh[a_index[:, t] + self.recurrent_fc(h)]
            hs[:, t] = h
        return hs

    def _run_float(self, x_q: np.ndarray, h0: np.ndarray) -> np.ndarray:
        steps = x_q.shape[1]
        history = self._recurrence_float(self._input_index(x_q.transpose(1, 0, 2)), h0, steps)
        return history[1:].transpose(1, 0, 2).astype(np.int8)

    def _input_index(self, x_t: np.ndarray):
        """``MAGIC`` plus the ADD+TANH index of ``a = FC(x)`` at step ``t``, as a function
        of ``t`` returning (B, H) float64, for int8 inputs ``x_t`` (T, B, D).

        Computed step by step in the loop where the input layer has a ``MagicRounding``
        and a step is large (buffers that stay in cache), else all at once (fewer calls).
        """
        fc, rounding = self.input_fc, self.magic
        steps, batch, dim = x_t.shape
        units = self.units
        if fc.magic is None or batch * units < STEPWISE_INPUT_SIZE:
            a = fc(x_t.reshape(steps * batch, dim)).reshape(steps, batch, units)
            return rounding.index_of(a).__getitem__
        x32 = x_t.astype(np.float32)
        if fc.input_zero_point:
            x32 -= np.float32(fc.input_zero_point)  # exact: small integers
        offset = float(rounding.index_of(np.zeros(1, dtype=np.int8))[0])
        acc32 = np.empty((batch, units), dtype=np.float32)
        index = np.empty((batch, units))

        def at(t: int) -> np.ndarray:
            np.matmul(x32[t], fc.weights32, out=acc32)
            if fc.has_bias:
                np.add(acc32, fc.bias32, out=acc32)
            fc.magic.before_magic(acc32, index)
            np.add(index, MAGIC + fc.magic.zero_point, out=index)  # rounded, + zp: a
            np.subtract(index, MAGIC, out=index)  # exact
            np.multiply(index, 256.0, out=index)
            return np.add(index, offset, out=index)

        return at

    def _recurrence_float(self, input_index, h0: np.ndarray, steps: int) -> np.ndarray:
        """The time loop in preallocated float buffers, exact (see ``float_exact``): the
        states of steps -1 .. T-1 (T + 1, B, H) as float32.

        Per step: the recurrent product (float32 is exact: every partial sum is an
        integer below 2**21), the requantization in float64 up to the last rounding,
        the saturation, and one addition of ``MAGIC + index`` that rounds to the
        nearest integer and carries FC(x) and the output zero point into the low
        bits of the float64 (``float_exact.MagicRounding``), which indexes the
        ADD+TANH table directly.
        """
        batch, units = h0.shape
        weights_t = self.recurrent_fc.weights32
        rounding = self.magic
        table = self.add_tanh.astype(np.float32)
        history = np.empty((steps + 1, batch, units), dtype=np.float32)
        history[0] = h0
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


class Int16Loop:
    """The time loop of an int16-state (16x8) layer: per step the recurrent product in
    exact int64, the profile's epilogue, the int16 ADD and the int16 TANH, vectorized
    over the batch (no 65,536-entry pair table: int16 pairs have 2**32)."""

    def __init__(self, layer: ElmanLayer, arithmetic: Profile):
        self.add = arithmetic.add(layer.add)
        self.arithmetic = arithmetic
        self.tanh_input = layer.tanh.input

    def run(self, a: np.ndarray, h0: np.ndarray, recurrent_fc: FullyConnectedEngine
            ) -> np.ndarray:
        """int16 states (B, T, H) from ``a = FC(x)`` (B, T, H) and states h0 (B, H)."""
        batch, steps, units = a.shape
        hs = np.empty((batch, steps, units), np.int16)
        h = np.asarray(h0, dtype=np.int16)
        for t in range(steps):
            z = self.add(a[:, t], recurrent_fc(h))
            h = hs[:, t] = self.arithmetic.tanh(z, self.tanh_input)
        return hs


Engine = ElmanEngine
