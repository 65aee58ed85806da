"""A random dense head for property tests (``elman.layers.random_model`` composes models)."""

from __future__ import annotations

from elman.layers.random_parts import RandomDraws, f32
from elman.quantize.ir import DenseHead, QuantParams, state_quant


def random_head(draws: RandomDraws, input_dim: int, output_dim: int, every_step: bool,
                activation: str = "linear") -> DenseHead:
    output_q = QuantParams(f32(0.1 / draws.level * draws.jitter()), draws.zero_point(),
                           draws.bits)
    fc = draws.fully_connected(output_dim, input_dim, state_quant(draws.bits), output_q, True)
    return DenseHead(fc, every_step=every_step, activation=activation)
