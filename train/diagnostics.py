"""The vanishing-gradient curve: ||dL_T / dh_k|| against the distance T - k.

Computed exactly in numpy from the trained weights (no TensorFlow): a forward
pass ``h_t = tanh(x_t W_x + h_{t-1} W_h + b)`` from ``h_0 = 0`` over held-out
sequences, the loss ``L_T`` = cross-entropy of the prediction made from the
last state ``h_T`` (the class label, or the next character), and the backward
recursion ``dL/dh_{t-1} = (dL/dh_t * (1 - h_t^2)) W_h^T``. Distance ``d``
means ``k = T - d``; ``d = 0`` is the gradient at the last state itself.

The work is capped by size, never by an index into the data: at most
``MAX_SEQUENCES`` sequences, distances up to ``MAX_DISTANCE`` steps, and no more
sequences than keep the stored states within ``MAX_STORED_VALUES`` floats and
the forward pass within ``MAX_MACS`` multiply-accumulates. A diagnostic is never
worth a trained model: :func:`guarded` turns any failure into a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

MAX_SEQUENCES = 256
MAX_DISTANCE = 1000
MAX_STORED_VALUES = 4_000_000  # (sequences, distances + 1, units) float64: 32 MB
MAX_MACS = 2_000_000_000  # forward pass: sequences x steps x units x (units + inputs)

T = TypeVar("T")


@dataclass(frozen=True)
class CellWeights:
    """Float weights of the trained model (numpy)."""

    w_x: np.ndarray  # (input, units)
    w_h: np.ndarray  # (units, units)
    b: np.ndarray  # (units,)
    w_y: np.ndarray  # (units, outputs)
    b_y: np.ndarray  # (outputs,)
    embedding: np.ndarray | None = None  # (vocab, emb) for text

    @classmethod
    def from_model(cls, model) -> CellWeights:
        w_x, w_h, b = (np.asarray(w, np.float64) for w in model.get_layer("rnn").get_weights())
        w_y, b_y = (np.asarray(w, np.float64) for w in model.get_layer("head").get_weights())
        names = {layer.name for layer in model.layers}
        emb = None
        if "embedding" in names:
            emb = np.asarray(model.get_layer("embedding").get_weights()[0], np.float64)
        return cls(w_x, w_h, b, w_y, b_y, emb)


def hidden_states(weights: CellWeights, x: np.ndarray) -> np.ndarray:
    """(N, T+1, units) hidden states h_0 = 0, h_1 .. h_T for inputs (N, T, input)."""
    n, steps, _ = x.shape
    h = np.zeros((n, steps + 1, weights.w_h.shape[0]))
    pre = x @ weights.w_x + weights.b
    for t in range(steps):
        h[:, t + 1] = np.tanh(pre[:, t] + h[:, t] @ weights.w_h)
    return h


def grad_norms_by_distance(weights: CellWeights, x: np.ndarray, targets: np.ndarray,
                           max_distance: int | None = None) -> np.ndarray:
    """(N, D) array: ``[n, d] = ||dL_T/dh_{T-d}||`` for each sequence, d = 0 .. D-1.

    ``D`` is the sequence length T, or ``max_distance`` when smaller; only the
    last ``D`` states are kept.
    """
    n, steps, _ = x.shape
    if len(targets) != n:
        raise ValueError(f"{n} sequences but {len(targets)} targets")
    distances = steps if max_distance is None else max(1, min(steps, max_distance))
    units = weights.w_h.shape[0]
    kept = np.zeros((n, distances + 1, units))  # h_{T-D} .. h_T
    h = np.zeros((n, units))
    first_kept = steps - distances
    if first_kept == 0:
        kept[:, 0] = h
    for t in range(steps):
        h = np.tanh(x[:, t] @ weights.w_x + weights.b + h @ weights.w_h)
        if t + 1 >= first_kept:
            kept[:, t + 1 - first_kept] = h
    logits = h @ weights.w_y + weights.b_y
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(n), targets] -= 1.0  # dL/dlogits
    g = p @ weights.w_y.T  # dL/dh_T
    norms = np.empty((n, distances))
    for d in range(distances):
        norms[:, d] = np.linalg.norm(g, axis=1)
        g = (g * (1.0 - kept[:, distances - d] ** 2)) @ weights.w_h.T
    return norms


def sequences_within_budget(count: int, steps: int, weights: CellWeights) -> int:
    """How many of ``count`` sequences of ``steps`` steps the curve uses (at least 1)."""
    units, inputs = weights.w_h.shape[0], weights.w_x.shape[0]
    distances = min(steps, MAX_DISTANCE)
    by_memory = MAX_STORED_VALUES // max(1, (distances + 1) * units)
    by_work = MAX_MACS // max(1, steps * units * (units + inputs))
    return max(1, min(count, MAX_SEQUENCES, by_memory, by_work))


def grad_vs_distance_report(norms: np.ndarray) -> dict:
    """Summary for train_report.json: mean / median per distance and a fitted decay rate."""
    mean = norms.mean(axis=0)
    median = np.median(norms, axis=0)
    d = np.arange(norms.shape[1])
    ok = mean > 0
    slope = float(np.polyfit(d[ok], np.log(mean[ok]), 1)[0]) if ok.sum() >= 2 else 0.0
    return {
        "definition": "||dL_T/dh_k||_2 vs distance T-k, L_T = cross-entropy at the last step, "
        "h_0 = 0, on held-out sequences",
        "sequences": int(norms.shape[0]),
        "distance": d.tolist(),
        "mean_norm": [float(v) for v in mean],
        "median_norm": [float(v) for v in median],
        "decay_per_step": float(np.exp(slope)),
        "ratio_at_max_distance": float(mean[-1] / mean[0]) if mean[0] > 0 else 0.0,
    }


def classification_curve(weights: CellWeights, x: np.ndarray, y: np.ndarray) -> dict:
    """The curve on the first held-out sequences that fit the size caps."""
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} sequences but {len(y)} labels")
    if len(x) == 0 or x.shape[1] == 0:
        raise ValueError("no held-out sequences to measure on")
    n = sequences_within_budget(len(x), x.shape[1], weights)
    return grad_vs_distance_report(grad_norms_by_distance(
        weights, x[:n].astype(np.float64), y[:n], MAX_DISTANCE))


def text_curve(weights: CellWeights, ids: np.ndarray, length: int = 100, count: int = 64):
    """Windows of ``length`` characters at evenly spaced places of a held-out stream."""
    length = min(length, len(ids) - 1)
    starts = np.linspace(0, len(ids) - length - 1, num=count).astype(int)
    starts = np.unique(starts)
    windows = np.stack([ids[s : s + length] for s in starts])
    targets = np.array([ids[s + length] for s in starts])
    x = weights.embedding[windows]
    return grad_vs_distance_report(grad_norms_by_distance(weights, x, targets))


def guarded(what: str, compute: Callable[[], T], warnings: list[str]) -> T | None:
    """``compute()``, or None with a warning appended when it fails (any Exception)."""
    try:
        return compute()
    except Exception as exc:  # noqa: BLE001 - a diagnostic must never cost the model
        warnings.append(f"{what} failed and was skipped ({type(exc).__name__}: {exc}); "
                        "the trained model is kept")
        return None
