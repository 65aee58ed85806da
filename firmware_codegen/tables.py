"""Tables the C reads instead of computing: built here, at generation time.

Both come from the simulator's own primitives (``elman.runtime.primitives``,
one source of truth), so the C is bit-exact with it by construction where it
uses them:

- ``tanh_table``: the int8 TANH of every int8 input (index ``z + 128``);
- ``add_input_table``: ADD's first-stage rescale of every int8 input value
  (``((q - zp) << 20)`` times the input's multiplier), so the step does one
  rescale per unit for ADD instead of three;
- ``token_input_table``: for a text model, the int8 output of the input
  FULLY_CONNECTED for every token's embedding row (vocab x units), so the
  token step runs no input multiply-accumulates.
"""

from __future__ import annotations

import numpy as np
from elman.quantize.ir import QuantizedRNN
from elman.runtime.primitives import (
    multiply_by_quantized_multiplier_smaller_than_one,
    quantize_multiplier_for,
    requantize,
)
from elman.runtime.primitives import tanh_table as profile_tanh_table


def tanh_table(ir: QuantizedRNN, profile: str) -> np.ndarray:
    """int8 (256,): TANH(z) for z = -128..127 in the given profile."""
    tanh_in = ir.tanh.input
    return profile_tanh_table(tanh_in.scale, int(tanh_in.zero_point), profile).astype(np.int8)


def token_input_table(ir: QuantizedRNN, profile: str) -> np.ndarray:
    """int8 (vocab, units): FC(embedding[token]; W_x, b) of every token, as the step computes it."""
    if ir.embedding is None:
        raise ValueError("token_input_table needs a text model (an IR with an embedding)")
    fc = ir.input_fc
    centered = ir.embedding.astype(np.int64) - int(fc.input.zero_point)
    acc = centered @ fc.weights.astype(np.int64).T + fc.bias.astype(np.int64)  # exact int64
    pairs = [quantize_multiplier_for(float(s), profile) for s in fc.effective_scales]
    multipliers = np.array([m for m, _ in pairs], dtype=np.int64)
    shifts = np.array([s for _, s in pairs], dtype=np.int64)
    return requantize(acc, multipliers, shifts, int(fc.output.zero_point), profile,
                      scales=fc.effective_scales.astype(np.float64))


def add_input_table(zero_point: int, left_shift: int, multiplier: int, shift: int,
                    profile: str) -> np.ndarray:
    """int32 (256,): the rescaled ADD input of q = -128..127, exactly as the step computes it."""
    q = np.arange(-128, 128, dtype=np.int64)
    shifted = (q - zero_point) * (1 << left_shift)
    return multiply_by_quantized_multiplier_smaller_than_one(
        shifted, multiplier, shift, profile).astype(np.int64)
