"""Task metrics of a classifier's answers, the same for float, int8 and C.

A classifier answers at the last step of a sequence (``head_steps="last"``,
one label per sequence) or at every step (``"every"``: streaming detection, one
label per step, the state carried). For per-step labels this module measures
the per-step accuracy and, after every change of the true label inside a
stream, the **switch delay**: how many steps pass from the change until the
answer first equals the new label (0: it switches at the very step of the
change). A change the answer never follows before the next change (or the
end of the stream) is *missed*; it is counted apart, not averaged in.

Pure numpy: every stage (quantize's LiteRT evaluation, verify's float / int8 / C
metrics, training) calls these functions on its own predictions.
"""

from __future__ import annotations

import numpy as np


def predictions(logits: np.ndarray) -> np.ndarray:
    """argmax over the last axis (the same for logits and softmax probabilities)."""
    return np.asarray(logits).argmax(axis=-1)


def switch_delays(predicted: np.ndarray, labels: np.ndarray) -> tuple[list[int], int]:
    """(delays of the followed changes, number of missed changes) over streams (B, T)."""
    predicted = np.atleast_2d(np.asarray(predicted))
    labels = np.atleast_2d(np.asarray(labels))
    if predicted.shape != labels.shape:
        raise ValueError(f"predictions {predicted.shape} and labels {labels.shape} differ")
    delays, missed = [], 0
    for pred, true in zip(predicted, labels, strict=True):
        changes = np.flatnonzero(true[1:] != true[:-1]) + 1
        ends = [*changes[1:], len(true)][:len(changes)]
        for start, end in zip(changes, ends, strict=True):
            hit = np.flatnonzero(pred[start:end] == true[start])
            if len(hit):
                delays.append(int(hit[0]))
            else:
                missed += 1
    return delays, missed


def delay_summary(delays: list[int], missed: int) -> dict:
    d = np.asarray(delays, np.float64)
    return {
        "changes": len(delays) + missed,
        "followed": len(delays),
        "missed": missed,
        "mean_steps": float(d.mean()) if len(d) else None,
        "median_steps": float(np.median(d)) if len(d) else None,
        "p90_steps": float(np.percentile(d, 90)) if len(d) else None,
        "max_steps": int(d.max()) if len(d) else None,
        "definition": "steps from a change of the true label until the answer first equals "
                      "the new label (0 = at the change); a change not followed before the "
                      "next one is missed",
    }


def real_steps(sequences: int, steps: int, lengths: np.ndarray | None = None) -> np.ndarray:
    """(B, T) bool: True on the real steps of each sequence (``lengths``; None: all steps).
    Sequences of unequal length are padded at the end (``elman.data.sequences``)."""
    if lengths is None:
        return np.ones((sequences, steps), bool)
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


def last_steps(real: np.ndarray) -> np.ndarray:
    """(B, T) bool: True at each sequence's last real step, where it answers."""
    out = np.zeros_like(real)
    out[np.arange(real.shape[0]), real.sum(axis=1) - 1] = True
    return out


def classification_metrics(logits: np.ndarray, labels: np.ndarray,
                           lengths: np.ndarray | None = None) -> dict:
    """Metrics of logits (B, T, O) at every step against labels (B,) or (B, T).

    Labels (B,): one answer per sequence, at its last (real) step: ``accuracy``.
    Labels (B, T): one answer per step: ``per_step_accuracy`` and ``switch_delay``.
    ``lengths``: each sequence's true length; steps after it are padding, not answers.
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    pred = predictions(logits)
    real = real_steps(pred.shape[0], pred.shape[1], lengths)
    if labels.ndim == 1:
        return {"accuracy": float((pred[last_steps(real)] == labels).mean())}
    if labels.shape != pred.shape:
        raise ValueError(f"per-step labels {labels.shape} do not match the answers "
                         f"{pred.shape}")
    if lengths is None:
        delays = switch_delays(pred, labels)
    else:
        found = [switch_delays(p[:n], y[:n]) for p, y, n in zip(pred, labels, lengths,
                                                                  strict=True)]
        delays = ([d for f in found for d in f[0]], sum(f[1] for f in found))
    return {"per_step_accuracy": float((pred == labels)[real].mean()),
            "switch_delay": delay_summary(*delays)}


def agreement(logits_a: np.ndarray, logits_b: np.ndarray, per_step: bool,
              lengths: np.ndarray | None = None) -> float:
    """Fraction of answers on which two implementations agree (last step, or every step)."""
    a, b = predictions(logits_a), predictions(logits_b)
    real = real_steps(a.shape[0], a.shape[1], lengths)
    answers = real if per_step else last_steps(real)
    return float((a[answers] == b[answers]).mean())


def headline(metrics: dict) -> tuple[str, float]:
    """The one number a table shows for these metrics: (name, value)."""
    if "accuracy" in metrics:
        return "accuracy", metrics["accuracy"]
    return "per-step accuracy", metrics["per_step_accuracy"]
