"""Random pieces every layer kind's random builder uses (``random_layer`` of each room).

Scales are drawn log-uniformly around those of a lively model and moved by up to
``spread`` decades (``extreme``: several), zero points anywhere in int8 (``extreme``:
often at its ends), weights symmetric int8 in [-127, 127] with occasional dead
or saturated channels, biases whose folded accumulators cannot overflow int32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from elman.quantize.ir import FullyConnected, QuantParams


def f32(v: float) -> float:
    """``v`` rounded to float32 (what a .tflite file stores), as a Python float."""
    return float(np.float32(v))


@dataclass
class RandomDraws:
    """The random source of one model, and how far its scales may stray."""

    rng: np.random.Generator
    extreme: bool
    bits: int = 8  # 16: a 16x8 model (int16 activations, zero points 0, int64 biases)

    @property
    def level(self) -> float:
        """How much finer an activation's steps are than int8's (1, or 256 for int16)."""
        return 1.0 if self.bits == 8 else 256.0

    @property
    def spread(self) -> float:
        return 3.0 if self.extreme else 0.5  # decades of deviation from a lively model

    def jitter(self, decades: float | None = None) -> float:
        d = self.spread if decades is None else decades
        return float(10 ** self.rng.uniform(-d, d))

    def zero_point(self) -> int:
        if self.bits == 16:
            return 0
        if self.extreme and self.rng.random() < 0.5:
            return int(self.rng.choice([-128, 127, 0]))
        return int(self.rng.integers(-128, 128))

    def fully_connected(self, out_f: int, in_f: int, input_q: QuantParams,
                        output_q: QuantParams, has_bias: bool) -> FullyConnected:
        """A random FULLY_CONNECTED whose accumulators land on ~50 output steps (jittered)."""
        rng = self.rng
        weights = rng.integers(-127, 128, size=(out_f, in_f)).astype(np.int8)
        if rng.random() < 0.3:
            weights[rng.integers(out_f)] = 0  # a dead channel
        if self.extreme:
            weights[rng.integers(out_f)] = rng.choice([-127, 127], size=in_f)
        # accumulators are typically ~ 73 * 74 * sqrt(in_f); aim them at ~50 output steps
        target = 50.0 / (73.0 * 74.0 * np.sqrt(in_f))
        ratio = input_q.scale / output_q.scale
        effective = np.array([target * self.jitter() for _ in range(out_f)])
        effective = np.clip(effective, 1e-12, 2.0**16)  # what QuantizeMultiplier represents
        weight_scales = (effective / ratio).astype(np.float32)
        bias = np.zeros(out_f, dtype=np.int64)
        if has_bias:
            # |bias - zp * sum(w)| + 128 * sum(|w|) must stay below 2**31
            w = weights.astype(np.int64)
            folded = np.abs(input_q.zero_point * w.sum(axis=1))
            room = (2**31 - 1) - 128 * np.abs(w).sum(axis=1) - folded
            typical = 73.0 * 74.0 * np.sqrt(in_f) * self.level
            limit = np.minimum(room, 2**30 if self.extreme else typical).astype(np.float64)
            bias = (rng.uniform(-1, 1, out_f) * limit).astype(np.int64)
        return FullyConnected(weights, weight_scales, bias, has_bias, input_q, output_q)
