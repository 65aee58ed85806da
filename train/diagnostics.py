"""The vanishing-gradient curve: ||dL_T / dh_k|| against the distance T - k.

Computed exactly in numpy from the trained weights (no TensorFlow): the float
model's forward pass (:class:`~elman.quantize.float_model.FloatElman`, float64)
from zero states over held-out sequences, the loss ``L_T`` = cross-entropy of
the prediction made from the last state (the class label, or the next
character), and the backward recursion through every layer: at step ``t``,
from the top layer down, ``g_l = dL/dh_l(t)`` (from step ``t+1`` and from layer
``l+1`` of the same step), ``delta_l = g_l * (1 - h_l(t)^2)``, which flows to
``h_(l-1)(t)`` through ``W_x^l`` and to ``h_l(t-1)`` through ``W_h^l``. The norm
at distance ``d`` (``k = T - d``) is that of all layers' ``g`` together;
``d = 0`` is the gradient at the last states themselves.

The work is capped by size, never by an index into the data: at most
``MAX_SEQUENCES`` sequences, distances up to ``MAX_DISTANCE`` steps, and no more
sequences than keep the stored states within ``MAX_STORED_VALUES`` floats and
the forward pass within ``MAX_MACS`` multiply-accumulates. A diagnostic is never
worth a trained model: :func:`guarded` turns any failure into a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
from elman.quantize.float_model import FloatElman

MAX_SEQUENCES = 256
MAX_DISTANCE = 1000
MAX_STORED_VALUES = 4_000_000  # (sequences, distances + 1, units) float64: 32 MB
MAX_MACS = 2_000_000_000  # forward pass: sequences x steps x units x (units + inputs)

T = TypeVar("T")


def grad_norms_by_distance(model: FloatElman, x: np.ndarray, targets: np.ndarray,
                           max_distance: int | None = None) -> np.ndarray:
    """(N, D) array: ``[n, d] = ||dL_T/dh_{T-d}||`` for each sequence, d = 0 .. D-1.

    ``D`` is the sequence length T, or ``max_distance`` when smaller; only the
    states of the last ``D`` steps are kept (the steps before run in windows of
    ``D`` steps).
    """
    x = np.asarray(x, np.float64)
    n, steps, _ = x.shape
    if len(targets) != n:
        raise ValueError(f"{n} sequences but {len(targets)} targets")
    distances = steps if max_distance is None else max(1, min(steps, max_distance))
    first_kept = steps - distances
    states = model.zero_states(n, np.float64)
    for start in range(0, first_kept, distances):
        run = model.run(x[:, start:min(start + distances, first_kept)], states,
                        dtype=np.float64)
        states = tuple(h[:, -1] for h in run.states)
    kept = model.run(x[:, first_kept:], states, dtype=np.float64).states  # (N, D, units_l)
    w_y = model.head_kernel.astype(np.float64)
    logits = kept[-1][:, -1] @ w_y + model.head_bias
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(n), targets] -= 1.0  # dL/dlogits
    carried = [np.zeros((n, u)) for u in model.units]  # dL/dh_l(t) from step t+1
    carried[-1] = p @ w_y.T  # dL/dh_L(T)
    norms = np.empty((n, distances))
    for d in range(distances):
        t = distances - 1 - d
        from_above = 0.0
        total_sq = np.zeros(n)
        for i in range(model.depth - 1, -1, -1):
            layer = model.layers[i]
            g = carried[i] + from_above
            total_sq += (g ** 2).sum(axis=1)
            delta = g * (1.0 - kept[i][:, t] ** 2)
            carried[i] = delta @ layer.recurrent_kernel.astype(np.float64).T
            from_above = delta @ layer.kernel.astype(np.float64).T
        norms[:, d] = np.sqrt(total_sq)
    return norms


def sequences_within_budget(count: int, steps: int, model: FloatElman) -> int:
    """How many of ``count`` sequences of ``steps`` steps the curve uses (at least 1)."""
    units = sum(model.units)
    macs = sum(la.units * (la.units + la.input_dim) for la in model.layers)
    distances = min(steps, MAX_DISTANCE)
    by_memory = MAX_STORED_VALUES // max(1, (distances + 1) * units)
    by_work = MAX_MACS // max(1, steps * macs)
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


def classification_curve(model: FloatElman, x: np.ndarray, y: np.ndarray) -> dict:
    """The curve on the first held-out sequences that fit the size caps (per-step labels:
    the last step's)."""
    x, y = np.asarray(x), np.asarray(y)
    if y.ndim == 2:
        y = y[:, -1]
    if len(x) != len(y):
        raise ValueError(f"{len(x)} sequences but {len(y)} labels")
    if len(x) == 0 or x.shape[1] == 0:
        raise ValueError("no held-out sequences to measure on")
    n = sequences_within_budget(len(x), x.shape[1], model)
    return grad_vs_distance_report(grad_norms_by_distance(
        model, x[:n].astype(np.float64), y[:n], MAX_DISTANCE))


def text_curve(model: FloatElman, ids: np.ndarray, length: int = 100, count: int = 64):
    """Windows of ``length`` characters at evenly spaced places of a held-out stream."""
    length = min(length, len(ids) - 1)
    starts = np.linspace(0, len(ids) - length - 1, num=count).astype(int)
    starts = np.unique(starts)
    windows = np.stack([ids[s : s + length] for s in starts])
    targets = np.array([ids[s + length] for s in starts])
    return grad_vs_distance_report(grad_norms_by_distance(model, model.embed(windows), targets))


def guarded(what: str, compute: Callable[[], T], warnings: list[str]) -> T | None:
    """``compute()``, or None with a warning appended when it fails (any Exception)."""
    try:
        return compute()
    except Exception as exc:  # noqa: BLE001 - a diagnostic must never cost the model
        warnings.append(f"{what} failed and was skipped ({type(exc).__name__}: {exc}); "
                        "the trained model is kept")
        return None
