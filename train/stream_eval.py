"""A text model's validation perplexity during and after training (numpy, float32).

The score is :mod:`elman.perplexity`'s one definition: the whole stream as one
sequence from a zero state, state carried across it. The recurrence runs in
float32 numpy from the Keras model's weights (the embedding, every ``SimpleRNN``
layer in order, the ``head``), one step at a time, the input projections and the
head in blocks of :data:`CHUNK` steps so that memory stays bounded on long
streams. No TensorFlow op runs: a numpy step is ~4x cheaper than a Keras call
per character here, and the same weights give the same number in every stage.
"""

from __future__ import annotations

import numpy as np

from elman import perplexity

CHUNK = 4096


def text_layers(model) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                                tuple[np.ndarray, np.ndarray]]:
    """(embedding table, [(kernel, recurrent kernel, bias) per recurrent layer], head)."""
    import keras

    embedding = model.get_layer("embedding").get_weights()[0]
    cells = [tuple(np.asarray(w, np.float32) for w in layer.get_weights())
             for layer in model.layers if isinstance(layer, keras.layers.SimpleRNN)]
    head = tuple(np.asarray(w, np.float32) for w in model.get_layer("head").get_weights())
    return np.asarray(embedding, np.float32), cells, head


def stream_score(model, ids: np.ndarray) -> dict:
    """:func:`elman.perplexity.score` of ``model`` on the stream ``ids``."""
    embedding, cells, (head_kernel, head_bias) = text_layers(model)
    inputs, targets = perplexity.stream_pairs(ids)
    states = [np.zeros(rec.shape[0], np.float32) for _, rec, _ in cells]
    total = 0.0
    for start in range(0, len(inputs), CHUNK):
        x = embedding[inputs[start : start + CHUNK]]
        for i, (kernel, recurrent, bias) in enumerate(cells):
            pre = x @ kernel + bias
            out = np.empty((len(pre), recurrent.shape[0]), np.float32)
            h = states[i]
            for t in range(len(pre)):
                h = np.tanh(pre[t] + h @ recurrent)
                out[t] = h
            states[i], x = h, out
        logits = x @ head_kernel + head_bias
        total += float(perplexity.next_token_nll(logits, targets[start : start + CHUNK]).sum())
    return perplexity.score(total, len(targets))
