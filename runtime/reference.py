"""The integer program of a model, written plainly: the reference every fast path is tested against.

One step at a time, one layer after the other, every operator separately in
int64 numpy with its profile's reference arithmetic (``elman.profiles``): no
float tricks, no fused tables, no precomputation across steps. It is slow and
meant to be obviously right; the simulator's numpy and numba engines and the
generated C are each tested against it, value for value, on random layered
models (``tests/test_reference.py``).

Each layer kind's step lives in its room (``elman.layers.<kind>.reference``).
"""

from __future__ import annotations

import numpy as np
from elman.layers import kind_module
from elman.profiles import get_profile
from elman.profiles.base import Requantization
from elman.quantize.ir import FullyConnected, QuantizedModel
from elman.runtime.outputs import StepOutputs


def fully_connected(fc: FullyConnected, requantization: Requantization, q: np.ndarray
                    ) -> np.ndarray:
    """FULLY_CONNECTED of int8 (int16) inputs (..., in): exact int64 sums, then the
    profile's epilogue (``requantization``)."""
    centred = np.asarray(q, dtype=np.int64) - int(fc.input.zero_point)
    acc = centred @ fc.weights.astype(np.int64).T + fc.bias.astype(np.int64)
    return requantization(acc)


def reference_run(model: QuantizedModel, profile: str, x_q: np.ndarray) -> StepOutputs:
    """Every step of int8 (int16) inputs ``x_q`` (B, T, D) from the zero state: the whole state
    (B, T, ``state_bytes``; layers in order) and y (B, T, O) or None."""
    arithmetic = get_profile(profile)
    x_q = np.asarray(x_q)
    dtype = model.state_dtype
    if x_q.dtype != dtype or x_q.ndim != 3 or x_q.shape[2] != model.input_dim:
        raise ValueError(f"inputs must be {np.dtype(dtype).name} (B, T, {model.input_dim}), "
                         f"got {x_q.dtype} {x_q.shape}")
    layers = [kind_module(layer.kind, "reference").Reference(layer, arithmetic)
              for layer in model.layers]
    head = None if model.head is None else \
        kind_module(model.head.kind, "reference").Reference(model.head, arithmetic)
    batch, steps, _ = x_q.shape
    states = [np.zeros((batch, layer.units), dtype) for layer in model.layers]
    hs = np.empty((batch, steps, model.state_bytes), dtype)
    ys = None if head is None else np.empty((batch, steps, model.output_dim), dtype)
    for t in range(steps):
        v = x_q[:, t]
        for i, layer in enumerate(layers):
            states[i] = v = layer.step(v, states[i])
            hs[:, t, model.state_slices[i]] = v
        if head is not None:
            ys[:, t] = head.apply(v)
    return StepOutputs(h=hs, y=ys)
