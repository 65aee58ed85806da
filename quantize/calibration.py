"""Calibration data from a run's real data: inputs and the float model's own hidden states.

The representative dataset of the step model is a set of ``(x_t, h_(t-1))``
pairs taken along real sequences run through the float cell: for sensor
models every step of every training sequence, for text models long streams of
the training text with the state carried (as in training and evaluation), plus
every row of the embedding table (any token may appear at run time, so the
``x`` range must cover the whole table).
"""

from __future__ import annotations

import numpy as np
from elman.quantize.step_model import MAX_CALIBRATION_SAMPLES, StepWeights

# Sensor inputs are heavy-tailed (BasicMotions: 99.8% of normalized values in [-4.7, 4.7],
# extremes -10 and 16.5) and ``x`` is quantized per tensor: clipping the calibration range
# to the 0.1 / 99.9 percentiles gives finer steps to almost every value (measured on
# BasicMotions: hidden-state error -28%, float/int8 agreement 97.5% -> 100%).
INPUT_PERCENTILE = 99.9
TEXT_STREAMS = 8
TEXT_STREAM_STEPS = 2000


def run_float(weights: StepWeights, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Float32 cell over sequences ``x`` (B, T, D) from a zero state: ``h`` (B, T, H), ``y``."""
    x = np.asarray(x, np.float32)
    b, t, _ = x.shape
    hs = np.empty((b, t, weights.units), np.float32)
    ys = None if weights.head_kernel is None else np.empty((b, t, weights.output_dim),
                                                            np.float32)
    pre = x @ weights.kernel + weights.bias  # input projection of every step at once
    h = np.zeros((b, weights.units), np.float32)
    for step in range(t):
        h = np.tanh(pre[:, step] + h @ weights.recurrent_kernel)
        hs[:, step] = h
    if ys is not None:
        ys[:] = hs @ weights.head_kernel + weights.head_bias
    return hs, ys


def pairs_along(weights: StepWeights, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every ``(x_t, h_(t-1))`` pair of sequences ``x`` (B, T, D), flattened."""
    hs, _ = run_float(weights, x)
    prev = np.concatenate([np.zeros_like(hs[:, :1]), hs[:, :-1]], axis=1)
    return x.reshape(-1, x.shape[2]).astype(np.float32), prev.reshape(-1, hs.shape[2])


def subsample(cx: np.ndarray, ch: np.ndarray, limit: int = MAX_CALIBRATION_SAMPLES,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` pairs, always keeping the ones holding the extreme input values."""
    if len(cx) <= limit:
        return cx, ch
    keep = {int(np.argmin(cx.min(axis=1))), int(np.argmax(cx.max(axis=1)))}
    rest = np.setdiff1d(np.arange(len(cx)), list(keep))
    pick = np.random.default_rng(seed).choice(rest, limit - len(keep), replace=False)
    idx = np.sort(np.concatenate([list(keep), pick]))
    return cx[idx], ch[idx]


def classification_calibration(weights: StepWeights, x_train: np.ndarray,
                               limit: int = MAX_CALIBRATION_SAMPLES,
                               input_percentile: float = INPUT_PERCENTILE,
                               ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs from every step of every training sequence (subsampled to ``limit``).

    The states are the float model's own on the unclipped inputs; only the
    calibration *inputs* are clipped to the ``[100 - p, p]`` percentiles of all
    training values (``p = 100``: the full min/max range).
    """
    cx, ch = pairs_along(weights, x_train)
    if input_percentile < 100:
        lo, hi = np.percentile(x_train, [100 - input_percentile, input_percentile])
        cx = np.clip(cx, lo, hi)
    return subsample(cx, ch, limit=limit)


def text_streams(ids: np.ndarray, streams: int = TEXT_STREAMS,
                 steps: int = TEXT_STREAM_STEPS) -> np.ndarray:
    """``streams`` windows of ``steps`` tokens, evenly spaced over ``ids`` (streams, steps)."""
    ids = np.asarray(ids)
    steps = min(steps, len(ids))
    starts = np.linspace(0, len(ids) - steps, streams).astype(np.int64)
    return np.stack([ids[s:s + steps] for s in starts])


def text_calibration(weights: StepWeights, embedding: np.ndarray, train_ids: np.ndarray,
                     limit: int = MAX_CALIBRATION_SAMPLES, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs along long training streams, plus every embedding row with a real state."""
    x = embedding[text_streams(train_ids)]
    cx, ch = subsample(*pairs_along(weights, x), limit=max(limit - len(embedding), 1), seed=seed)
    rows = np.random.default_rng(seed).integers(0, len(ch), len(embedding))
    return (np.concatenate([cx, embedding.astype(np.float32)]),
            np.concatenate([ch, ch[rows]]))
