"""The Elman layer for the C generator: its view (names, constants, tables) and templates.

``templates/step.c.j2`` renders the layer's ADD and its ``<prefix>_layer<N>_advance``
function (4 units at a time: FC(in), FC(h), ADD, TANH, h' written into the layer's
state); ``templates/weights.h.j2`` its weights, requantization constants, ADD
tables and TANH table. The first layer of a text model also gets the token table
(FC(x) of every token's embedding row, precomputed: no input MACs at run time).
"""

from __future__ import annotations

import functools

import numpy as np
from elman.firmware_codegen.fully_connected import CFullyConnected
from elman.profiles import get_profile
from elman.profiles import primitives as P
from elman.profiles.base import AddRescale
from elman.quantize.ir import ElmanLayer, QuantizedModel

from elman.errors import ModelError

STEP_TEMPLATE = "elman/step.c.j2"
WEIGHTS_TEMPLATE = "elman/weights.h.j2"
STEP16_TEMPLATE = "elman/step16.c.j2"  # the int16 state (16x8)
WEIGHTS16_TEMPLATE = "elman/weights16.h.j2"


class CElmanLayer:
    """Layer ``number`` (1-based) of ``model`` as the templates see it."""

    step_template = STEP_TEMPLATE
    weights_template = WEIGHTS_TEMPLATE

    def __init__(self, layer: ElmanLayer, number: int, model: QuantizedModel, prefix: str,
                 profile: str, below: CElmanLayer | None):
        self.layer = layer
        self.prefix = prefix
        if layer.state_bits == 16:
            self.step_template, self.weights_template = STEP16_TEMPLATE, WEIGHTS16_TEMPLATE
        self.number = number
        self.name = f"layer{number}"
        self.P = f"{prefix.upper()}_LAYER{number}"  # macro prefix: <P>_UNITS, <P>_STATE_OFFSET
        self.title = f"layer {number}"
        self.profile = profile
        self.below = below
        self.units = layer.units
        self.state_offset = model.state_slices[number - 1].start
        self.input_name = "x" if below is None else f"h_{number - 1}'"
        self.input_fc = CFullyConnected(f"{self.name}_input",
                                        f"layer {number} input W_x (with the layer's bias)",
                                        layer.input_fc, profile)
        self.recurrent_fc = CFullyConnected(f"{self.name}_recurrent",
                                            f"layer {number} recurrent W_h",
                                            layer.recurrent_fc, profile)
        self.fcs = (self.input_fc, self.recurrent_fc)
        self.add = _add(layer, profile)
        # the first layer of a text model reads precomputed rows, one per token
        self._embedding = model.embedding if number == 1 else None
        self.token_input = self._embedding is not None

    @property
    def units_padded(self) -> int:
        return 4 * (-(-self.units // 4))

    @property
    def tanh_input_scale(self) -> float:
        return self.layer.tanh.input.scale

    @property
    def tanh_input_zero_point(self) -> int:
        return int(self.layer.tanh.input.zero_point)

    def add16_stage(self, name: str, which: int) -> str:
        """16x8: the C of ADD's first stage of input ``which`` (1: a, 2: r), value ``name``:
        ``(v << 15)`` rescaled; exactly ``v << 14`` for the input of the larger scale (its
        multiplier is one half: 2**30, shift 0)."""
        multiplier, shift = (self.add.input1_multiplier if which == 1
                             else self.add.input2_multiplier)
        if (multiplier, shift) == (1 << 30, 0):
            return f"(int32_t){name} * 16384"
        return f"{self.prefix}_multiply_small((int32_t){name} * 32768, {multiplier}, {shift})"

    @property
    def tanh16(self) -> tuple[int, int]:
        """16x8: the int16 TANH's (multiplier, left shift), the power-of-two case resolved."""
        multiplier, shift = P.tanh_int16_params(self.tanh_input_scale)
        return (3 << shift, 0) if multiplier == 0 else (multiplier, shift)

    @functools.cached_property
    def tanh_table(self) -> np.ndarray:
        return get_profile(self.profile).tanh_table(self.layer.tanh.input).astype(np.int8)

    @functools.cached_property
    def add_input_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """ADD's first-stage rescale of every int8 ``a`` and ``r`` (index value + 128)."""
        return self.add.input_table(1), self.add.input_table(2)

    @functools.cached_property
    def token_input_table(self) -> np.ndarray:
        """int8 (vocab * units,): FC(embedding[token]; W_x, b) of every token, row-major."""
        return token_input_table(self.layer, self._embedding, self.profile).reshape(-1)


def token_input_table(layer: ElmanLayer, embedding: np.ndarray, profile: str) -> np.ndarray:
    """int8 (vocab, units): FC(embedding[token]; W_x, b) of every token, as the step computes it
    (int16 for the int16 state)."""
    fc = layer.input_fc
    centered = embedding.astype(np.int64) - int(fc.input.zero_point)
    acc = centered @ fc.weights.astype(np.int64).T + fc.bias.astype(np.int64)  # exact int64
    return get_profile(profile).fully_connected(fc)(acc)


def _add(layer: ElmanLayer, profile: str) -> AddRescale:
    add = get_profile(profile).add(layer.add)
    if not add.below_one:
        raise ModelError("ADD: an input or output rescale is not below one; TFLite rejects "
                         "such an ADD, and so does elman")
    return add


View = CElmanLayer
