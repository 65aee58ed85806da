"""Random-weight step models for tests of every stage (real TF conversion, real pinned state).

``random_step_tflite`` builds an Elman model (1-3 layers) with random weights,
runs it in float over random input sequences to get its own hidden states, and
converts it
with :func:`~elman.quantize.step_model.convert_step_model`. The calibration
inputs span exactly ``[-x_range, x_range]`` (one sample reaches both ends), so
tests can choose extreme input scales; ``weight_scale`` multiplies the
Glorot-like weight spread (large values saturate the state, small ones keep it
near zero). Results are cached per process: the same arguments give the same
bytes without a second conversion, and when the environment variable
``ELMAN_RANDOM_STEP_CACHE`` names a directory (the test suite's conftest sets
one per session), across processes too (file lock; xdist workers share it).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
from pathlib import Path

import numpy as np
from elman.quantize.float_model import ElmanLayer, FloatElman
from elman.quantize.step_model import convert_step_model

CALIBRATION_SEQUENCES = 8
CALIBRATION_STEPS = 32
CACHE_ENV = "ELMAN_RANDOM_STEP_CACHE"


def _units(units: int | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    return (int(units),) if isinstance(units, int | np.integer) else tuple(int(u) for u in units)


def random_step_weights(input_dim: int, units: int | tuple[int, ...], output_dim: int, *,
                        seed: int = 0, weight_scale: float = 1.0) -> FloatElman:
    """Random float weights: N(0, weight_scale^2 / fan_in), biases N(0, (0.1 weight_scale)^2).

    ``units``: one layer's size, or one size per stacked layer.
    """
    rng = np.random.default_rng(seed)

    def normal(*shape: int, fan_in: int) -> np.ndarray:
        return (rng.standard_normal(shape) * weight_scale / np.sqrt(fan_in)).astype(np.float32)

    layers, fan_in = [], input_dim
    for u in _units(units):
        layers.append(ElmanLayer(kernel=normal(fan_in, u, fan_in=fan_in),
                                 recurrent_kernel=normal(u, u, fan_in=u),
                                 bias=(rng.standard_normal(u) * 0.1 * weight_scale)
                                 .astype(np.float32)))
        fan_in = u
    return FloatElman(
        layers=tuple(layers),
        head_kernel=normal(fan_in, output_dim, fan_in=fan_in) if output_dim else None,
        head_bias=(rng.standard_normal(output_dim) * 0.1 * weight_scale).astype(np.float32)
        if output_dim else None,
    )


def random_step_tflite(
    input_dim: int,
    units: int | tuple[int, ...],
    output_dim: int,
    *,
    seed: int = 0,
    task: str = "classification",
    vocab_size: int = 0,
    x_range: float = 1.0,
    weight_scale: float = 1.0,
    state_bits: int = 8,
) -> bytes:
    """A converted int8 step model with random weights (see the module docstring);
    ``state_bits=16``: 16x8 (int16 activations and state).

    ``task="language_model"`` needs ``vocab_size > 0`` and ``output_dim == vocab_size``;
    its embedding table is uniform in ``[-x_range, x_range]`` (stored int8 in the
    file) and its labels are the vocabulary ``"t0", "t1", ...``. Classification
    models get labels ``"class0", ...``, ``norm_mean`` 0 and ``norm_std`` 1.
    """
    args = (int(input_dim), _units(units), int(output_dim), int(seed), str(task), int(vocab_size),
            float(x_range), float(weight_scale), int(state_bits))
    cache_dir = os.environ.get(CACHE_ENV)
    if not cache_dir:
        return _random_step_tflite(*args)
    root = Path(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = root / (hashlib.sha256(repr(args).encode()).hexdigest()[:32] + ".tflite")
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not path.exists():
                tmp = path.with_suffix(".partial")
                tmp.write_bytes(_random_step_tflite(*args))
                os.replace(tmp, path)
            return path.read_bytes()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@functools.lru_cache(maxsize=64)
def _random_step_tflite(input_dim: int, units: tuple[int, ...], output_dim: int, seed: int,
                        task: str, vocab_size: int, x_range: float, weight_scale: float,
                        state_bits: int = 8) -> bytes:
    if input_dim < 1 or min(units) < 1 or output_dim < 0:
        raise ValueError("need input_dim >= 1, units >= 1, output_dim >= 0")
    if x_range <= 0:
        raise ValueError("x_range must be positive")
    weights = random_step_weights(input_dim, units, output_dim, seed=seed,
                                  weight_scale=weight_scale)
    rng = np.random.default_rng(seed + 1)
    n, t = CALIBRATION_SEQUENCES, CALIBRATION_STEPS
    embedding = None
    if task == "language_model":
        if vocab_size < 2 or output_dim != vocab_size:
            raise ValueError("a language model needs vocab_size >= 2 and output_dim == vocab_size")
        embedding = rng.uniform(-x_range, x_range, (vocab_size, input_dim)).astype(np.float32)
        embedding[0, 0], embedding[-1, -1] = -x_range, x_range
        xs = embedding[rng.integers(0, vocab_size, (n, t))]
        labels = tuple(f"t{i}" for i in range(vocab_size))
    elif task == "classification":
        xs = rng.uniform(-x_range, x_range, (n, t, input_dim)).astype(np.float32)
        xs[0, 0, 0], xs[0, 1, 0] = -x_range, x_range
        labels = tuple(f"class{i}" for i in range(output_dim))
    else:
        raise ValueError(f"unknown task {task!r}")
    if embedding is not None:
        weights = FloatElman(weights.layers, weights.head_kernel, weights.head_bias,
                             head_steps="every", embedding=embedding)
    run = weights.run(xs)
    cal_x = xs.reshape(-1, input_dim)
    cal_h = [np.concatenate([np.zeros_like(h[:, :1]), h[:, :-1]], axis=1).reshape(-1, h.shape[2])
             for h in run.states]
    if embedding is not None:  # every row of the table is a possible input
        rows = rng.integers(0, len(cal_x), vocab_size)
        cal_x = np.concatenate([cal_x, embedding])
        cal_h = [np.concatenate([h, h[rows]]) for h in cal_h]
    is_lm = task == "language_model"
    return convert_step_model(
        weights, cal_x, cal_h, task=task, labels=labels,
        norm_mean=None if is_lm else np.zeros(input_dim, np.float32),
        norm_std=None if is_lm else np.ones(input_dim, np.float32),
        state_bits=state_bits,
    )
