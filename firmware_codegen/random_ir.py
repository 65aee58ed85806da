"""Random ``QuantizedRNN`` objects built directly (no TensorFlow), for tests and benchmarks.

The IR is constructed from a NumPy seed, so the same arguments give the same
model on every machine and TF version (golden files depend on it). Scales are
drawn log-uniformly over wide ranges and zero points anywhere in int8, within
what a valid TFLite model can hold: symmetric int8 weights in [-127, 127], an
ADD whose rescales are all below one, the state quantized (1/128, 0), and
biases whose accumulators cannot overflow int32.
"""

from __future__ import annotations

import numpy as np
from elman.quantize.ir import (
    STATE_SCALE,
    STATE_ZERO_POINT,
    Add,
    FullyConnected,
    QuantizedRNN,
    QuantParams,
    StepSignature,
    Tanh,
)

STATE = QuantParams(STATE_SCALE, STATE_ZERO_POINT)


def random_ir(
    input_dim: int,
    units: int,
    output_dim: int,
    *,
    seed: int = 0,
    vocab_size: int = 0,
    extreme: bool = False,
    labels: tuple[str, ...] | None = None,
) -> QuantizedRNN:
    """A random int8 Elman step model; ``output_dim=0`` for none; ``vocab_size>0`` for text.

    ``extreme`` widens every scale range by several decades and pushes zero
    points and biases to their ends.
    """
    rng = np.random.default_rng(seed)
    spread = 3.0 if extreme else 0.5  # decades of random deviation from a lively model

    def jitter(decades: float = spread) -> float:
        return float(10 ** rng.uniform(-decades, decades))

    def zero_point() -> int:
        if extreme and rng.random() < 0.5:
            return int(rng.choice([-128, 127, 0]))
        return int(rng.integers(-128, 128))

    # The scales of a model whose values spread over int8 (TANH neither flat nor
    # saturated), each moved by up to `spread` decades.
    z_q = QuantParams(_f32(0.03 * jitter()), zero_point())
    a_q = QuantParams(_f32(z_q.scale / 1.5 * jitter(0.5 * spread)), zero_point())
    r_q = QuantParams(_f32(z_q.scale / 1.5 * jitter(0.5 * spread)), zero_point())
    x_q = QuantParams(_f32(0.02 * jitter()), zero_point())
    input_fc = _fc(rng, units, input_dim, x_q, a_q, True, extreme, jitter)
    recurrent_fc = _fc(rng, units, units, STATE, r_q, False, extreme, jitter)
    twice_max = 2.0 * max(a_q.scale, r_q.scale)
    if z_q.scale < twice_max * 2.0**-18:  # TFLite's ADD needs its output rescale below one
        z_q = QuantParams(_f32(twice_max * 2.0**-18), z_q.zero_point)
    head = None
    if output_dim:
        head = _fc(rng, output_dim, units, STATE, QuantParams(_f32(0.1 * jitter()), zero_point()),
                   True, extreme, jitter)
    embedding = None
    task = "classification"
    if vocab_size:
        task = "language_model"
        embedding = rng.integers(-128, 128, size=(vocab_size, input_dim), dtype=np.int8)
    if labels is None:
        count = vocab_size if vocab_size else output_dim
        labels = tuple(f"c{i}" for i in range(count))
    norm = None if vocab_size else rng.normal(0, 1, input_dim).astype(np.float32)
    return QuantizedRNN(
        task=task,
        input_fc=input_fc,
        recurrent_fc=recurrent_fc,
        add=Add(a_q, r_q, z_q),
        tanh=Tanh(z_q),
        head=head,
        signature=StepSignature(0, 1, 0, 1 if head is not None else None),
        labels=labels,
        embedding=embedding,
        norm_mean=norm,
        norm_std=None if norm is None else (np.abs(norm) + 0.5).astype(np.float32),
        source_sha256=f"{seed:064x}",
        model_bytes=0,
    )


def _f32(v: float) -> float:
    return float(np.float32(v))


def _fc(rng, out_f, in_f, input_q, output_q, has_bias, extreme, jitter) -> FullyConnected:
    weights = rng.integers(-127, 128, size=(out_f, in_f)).astype(np.int8)
    if rng.random() < 0.3:
        weights[rng.integers(out_f)] = 0  # a dead channel
    if extreme:
        weights[rng.integers(out_f)] = rng.choice([-127, 127], size=in_f)
    # accumulators are typically ~ 73 * 74 * sqrt(in_f); aim them at ~50 output steps
    target = 50.0 / (73.0 * 74.0 * np.sqrt(in_f))
    ratio = input_q.scale / output_q.scale
    effective = np.array([target * jitter() for _ in range(out_f)])
    effective = np.clip(effective, 1e-12, 2.0**16)  # what QuantizeMultiplier represents
    weight_scales = (effective / ratio).astype(np.float32)
    bias = np.zeros(out_f, dtype=np.int64)
    if has_bias:
        # |bias - zp * sum(w)| + 128 * sum(|w|) must stay below 2**31
        w = weights.astype(np.int64)
        folded = np.abs(input_q.zero_point * w.sum(axis=1))
        room = (2**31 - 1) - 128 * np.abs(w).sum(axis=1) - folded
        typical = 73.0 * 74.0 * np.sqrt(in_f)
        limit = np.minimum(room, 2**30 if extreme else typical).astype(np.float64)
        bias = (rng.uniform(-1, 1, out_f) * limit).astype(np.int64)
    return FullyConnected(weights, weight_scales, bias.astype(np.int32), has_bias, input_q,
                          output_q)
