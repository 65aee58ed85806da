"""Tables the C reads instead of computing: built here, at generation time.

All come from the profile (``elman.profiles``, the one owner of the arithmetic
the simulator uses too), so the C is bit-exact with it by construction where it
uses them:

- ``tanh_table``: the int8 TANH of every int8 input (index ``z + 128``);
- ``AddRescale.input_table``: ADD's first-stage rescale of every int8 input value
  (``((q - zp) << 20)`` times the input's multiplier), so the step does one
  rescale per unit for ADD instead of three;
- ``token_input_table``: for a text model, the int8 output of the input
  FULLY_CONNECTED for every token's embedding row (vocab x units), so the
  token step runs no input multiply-accumulates.
"""

from __future__ import annotations

import numpy as np
from elman.profiles import get_profile
from elman.quantize.ir import QuantizedRNN


def tanh_table(ir: QuantizedRNN, profile: str) -> np.ndarray:
    """int8 (256,): TANH(z) for z = -128..127 in the given profile."""
    return get_profile(profile).tanh_table(ir.tanh.input).astype(np.int8)


def token_input_table(ir: QuantizedRNN, profile: str) -> np.ndarray:
    """int8 (vocab, units): FC(embedding[token]; W_x, b) of every token, as the step computes it."""
    if ir.embedding is None:
        raise ValueError("token_input_table needs a text model (an IR with an embedding)")
    fc = ir.input_fc
    centered = ir.embedding.astype(np.int64) - int(fc.input.zero_point)
    acc = centered @ fc.weights.astype(np.int64).T + fc.bias.astype(np.int64)  # exact int64
    return get_profile(profile).fully_connected(fc)(acc)
