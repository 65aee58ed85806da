"""Random ``QuantizedRNN`` models of any size, for speed tables and tests without TF.

The scales are those a converter would pick for Glorot-like float weights and
inputs in about [-3, 3]; the integer program does not care whether the model
was trained, only the sizes and the quantization parameters matter for
instruction counts, and bit-exactness must hold for any parameters.
"""

from __future__ import annotations

import numpy as np
from elman.quantize.ir import (
    Add,
    FullyConnected,
    QuantizedRNN,
    QuantParams,
    StepSignature,
    Tanh,
)

STATE = QuantParams(1.0 / 128.0, 0)


def _fc(rng: np.random.Generator, out_f: int, in_f: int, inp: QuantParams, bias: bool,
        out_range: float) -> FullyConnected:
    w_float = rng.normal(0.0, 1.0 / np.sqrt(in_f), (out_f, in_f))
    w_scales = (np.abs(w_float).max(axis=1) / 127.0).astype(np.float32)
    weights = np.clip(np.round(w_float / w_scales[:, None]), -127, 127).astype(np.int8)
    b = (rng.normal(0.0, 0.1, out_f) / (inp.scale * w_scales.astype(np.float64))
         if bias else np.zeros(out_f))
    zp = int(rng.integers(-10, 11))
    return FullyConnected(weights=weights, weight_scales=w_scales,
                          bias=np.round(b).astype(np.int32), has_bias=bias, input=inp,
                          output=QuantParams(float(np.float32(out_range / 127.5)), zp))


def random_ir(input_dim: int, units: int, output_dim: int, *, seed: int = 0) -> QuantizedRNN:
    """A classification ``QuantizedRNN`` with random int8 weights and plausible scales."""
    rng = np.random.default_rng(seed)
    x_q = QuantParams(float(np.float32(6.0 / 255.0)), int(rng.integers(-20, 21)))
    input_fc = _fc(rng, units, input_dim, x_q, True, 2.5)
    recurrent_fc = _fc(rng, units, units, STATE, False, 2.0)
    add_out = QuantParams(float(np.float32(4.0 / 255.0)), int(rng.integers(-5, 6)))
    head = _fc(rng, output_dim, units, STATE, True, 4.0) if output_dim else None
    return QuantizedRNN(
        task="classification", input_fc=input_fc, recurrent_fc=recurrent_fc,
        add=Add(input_fc.output, recurrent_fc.output, add_out), tanh=Tanh(add_out),
        head=head, signature=StepSignature(0, 1, 0, 1 if output_dim else None),
        labels=tuple(f"class{i}" for i in range(output_dim)),
        source_sha256=f"random-{input_dim}-{units}-{output_dim}-seed{seed}",
    )


def random_inputs(ir: QuantizedRNN, batch: int, steps: int, *, seed: int = 0) -> np.ndarray:
    """int8 inputs (batch, steps, input_dim) spread over the whole int8 range."""
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, (batch, steps, ir.input_dim), dtype=np.int8)
