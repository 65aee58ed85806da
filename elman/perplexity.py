"""Validation perplexity of a character language model, defined once.

Every stage that reports a text model's perplexity (training, quantization,
verify, the report) computes it with this module, on the same stream:

- the stream is the whole validation split, characters in order, run as **one
  sequence**: the model starts from a zero state at the first character and
  carries its state across the whole stream, as a microcontroller calling
  ``<prefix>_step_token`` would;
- every next character is predicted: input ``ids[t]``, target ``ids[t + 1]``,
  ``t = 0 .. L - 2`` (``L - 1`` predictions);
- perplexity is ``exp`` of the mean negative log-likelihood (nats) of those
  predictions, bits per character the same mean divided by ``ln 2``.

Any other number (a prefix of the stream, a batch of parallel streams, a
training loss) is labelled as such where it is shown. numpy only: every stage
may import it.
"""

from __future__ import annotations

import math

import numpy as np

DEFINITION = (
    "the whole validation stream as one sequence from a zero state, state carried "
    "across it (as the microcontroller runs it); exp of the mean next-character "
    "negative log-likelihood"
)


def stream_pairs(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) of a stream of token ids: every character predicts the next."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if len(ids) < 2:
        raise ValueError(f"a stream needs at least 2 characters, got {len(ids)}")
    return ids[:-1], ids[1:]


def next_token_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Negative log-likelihood (nats, float64) of ``targets`` (T,) under ``logits`` (T, V)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=-1))
    picked = np.take_along_axis(z, np.asarray(targets)[..., None], axis=-1)[..., 0]
    return log_norm - picked


def score(total_nll: float, predictions: int) -> dict:
    """``nll`` (mean, nats), ``perplexity``, ``bits_per_char`` and the prediction count."""
    if predictions < 1:
        raise ValueError("no predictions to score")
    mean = float(total_nll) / predictions
    return {
        "nll": mean,
        "perplexity": math.exp(mean),
        "bits_per_char": mean / math.log(2),
        "predictions": int(predictions),
    }


def score_nll(nll: np.ndarray) -> dict:
    """:func:`score` of per-prediction negative log-likelihoods."""
    nll = np.asarray(nll, dtype=np.float64)
    return score(float(nll.sum()), nll.size)


def score_logits(logits: np.ndarray, targets: np.ndarray) -> dict:
    """:func:`score` of logits (T, V) of every prediction of a stream and its targets (T,)."""
    return score_nll(next_token_nll(logits, targets))
