"""A random Elman layer for property tests (``elman.layers.random_model`` composes models)."""

from __future__ import annotations

from elman.layers.random_parts import RandomDraws, f32
from elman.quantize.ir import (
    ADD_LEFT_SHIFT,
    ADD_LEFT_SHIFT_16,
    Add,
    ElmanLayer,
    QuantParams,
    Tanh,
    state_quant,
)


def random_layer(draws: RandomDraws, input_dim: int, units: int,
                 input_q: QuantParams | None) -> ElmanLayer:
    """A random valid Elman layer; ``input_q`` None draws the input's quantization (a first
    layer reading ``x``), else it is the layer below's (the state, (1/128, 0)).

    The ADD's rescales are all below one (TFLite's requirement) and its output scale
    spreads the pre-activation over int8 (TANH neither flat nor saturated).
    """
    bits, fine = draws.bits, draws.level
    z_q = QuantParams(f32(0.03 / fine * draws.jitter()), draws.zero_point(), bits)
    a_q = QuantParams(f32(z_q.scale / 1.5 * draws.jitter(0.5 * draws.spread)), draws.zero_point(),
                      bits)
    r_q = QuantParams(f32(z_q.scale / 1.5 * draws.jitter(0.5 * draws.spread)), draws.zero_point(),
                      bits)
    if input_q is None:
        input_q = QuantParams(f32(0.02 / fine * draws.jitter()), draws.zero_point(), bits)
    state = state_quant(bits)
    input_fc = draws.fully_connected(units, input_dim, input_q, a_q, True)
    recurrent_fc = draws.fully_connected(units, units, state, r_q, False)
    shift = ADD_LEFT_SHIFT if bits == 8 else ADD_LEFT_SHIFT_16
    twice_max = 2.0 * max(a_q.scale, r_q.scale)
    if z_q.scale < twice_max * 2.0**(2 - shift):  # TFLite's ADD needs its output rescale < 1
        z_q = QuantParams(f32(twice_max * 2.0**(2 - shift)), z_q.zero_point, bits)
    return ElmanLayer(input_fc, recurrent_fc, Add(a_q, r_q, z_q, shift), Tanh(z_q, state))
