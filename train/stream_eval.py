"""A text model's validation perplexity during and after training (numpy, float32).

The score is :mod:`elman.perplexity`'s one definition: the whole stream as one
sequence from a zero state, state carried across it. The float model is the
project's one numpy float model (:class:`~elman.quantize.float_model.FloatElman`,
read from the Keras model by structure), run in blocks of :data:`CHUNK` steps
with the state carried from block to block so that memory stays bounded on long
streams. No TensorFlow op runs: a numpy step is ~4x cheaper than a Keras call
per character here, and every stage that scores the float model gets the same
number.
"""

from __future__ import annotations

import numpy as np

from elman import perplexity

CHUNK = 4096


def float_stream_score(model, ids: np.ndarray) -> dict:
    """:func:`elman.perplexity.score` of a ``FloatElman`` text model on the stream ``ids``."""
    inputs, targets = perplexity.stream_pairs(ids)
    states, total = None, 0.0
    for start in range(0, len(inputs), CHUNK):
        run = model.run(model.embed(inputs[None, start : start + CHUNK]), states)
        states = tuple(s[:, -1] for s in run.states)
        nll = perplexity.next_token_nll(run.logits[0], targets[start : start + CHUNK])
        total += float(nll.sum())
    return perplexity.score(total, len(targets))


def stream_score(keras_model, ids: np.ndarray) -> dict:
    """:func:`float_stream_score` of a trained Keras text model."""
    from elman.quantize.keras_model import read_keras

    return float_stream_score(read_keras(keras_model, "language_model").model, ids)
