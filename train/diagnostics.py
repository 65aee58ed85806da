"""The vanishing-gradient curve: ||dL_T / dh_k|| against the distance T - k.

Computed exactly in numpy from the trained weights (no TensorFlow): a forward
pass ``h_t = tanh(x_t W_x + h_{t-1} W_h + b)`` from ``h_0 = 0`` over held-out
sequences, the loss ``L_T`` = cross-entropy of the prediction made from the
last state ``h_T`` (the class label, or the next character), and the backward
recursion ``dL/dh_{t-1} = (dL/dh_t * (1 - h_t^2)) W_h^T``. Distance ``d``
means ``k = T - d``; ``d = 0`` is the gradient at the last state itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


def grad_norms_by_distance(weights: CellWeights, x: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(N, T) array: ``[n, d] = ||dL_T/dh_{T-d}||`` for each sequence, d = 0 .. T-1."""
    h = hidden_states(weights, x)
    logits = h[:, -1] @ weights.w_y + weights.b_y
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(targets)), targets] -= 1.0  # dL/dlogits
    g = p @ weights.w_y.T  # dL/dh_T
    steps = x.shape[1]
    norms = np.empty((len(x), steps))
    for d in range(steps):
        t = steps - d  # g is dL/dh_t
        norms[:, d] = np.linalg.norm(g, axis=1)
        g = (g * (1.0 - h[:, t] ** 2)) @ weights.w_h.T
    return norms


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


def classification_curve(weights: CellWeights, x: np.ndarray, y: np.ndarray, limit: int = 256):
    return grad_vs_distance_report(grad_norms_by_distance(weights, x[:limit].astype(np.float64), y))


def text_curve(weights: CellWeights, ids: np.ndarray, length: int = 100, count: int = 64):
    """Windows of ``length`` characters at evenly spaced places of a held-out stream."""
    length = min(length, len(ids) - 1)
    starts = np.linspace(0, len(ids) - length - 1, num=count).astype(int)
    starts = np.unique(starts)
    windows = np.stack([ids[s : s + length] for s in starts])
    targets = np.array([ids[s + length] for s in starts])
    x = weights.embedding[windows]
    return grad_vs_distance_report(grad_norms_by_distance(weights, x, targets))
