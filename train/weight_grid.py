"""Weights on the int8 grid: quantization-aware training of the weights (``--qat-weights``).

The converter quantizes every FULLY_CONNECTED weight matrix symmetrically per output
channel: ``scale[c] = max|w[:, c]| / 127``, ``q = round(w / scale)`` in [-127, 127], zero
point 0 (in both the int8 and the 16x8 mode; ``tests/test_weight_grid.py`` checks the
converted ``.tflite`` against :func:`on_grid`). A float model whose weights already are
``q * scale`` loses nothing when its weights are quantized: what remains between the float
model and the quantized one is the activations' and the state's arithmetic. That is what
the int16 state needs, since the int8 weights of TFLite's 16x8 mode were, on BasicMotions,
most of its error against the float model (max 0.39 of 0.39).

Training does this for the last :data:`QAT_FRACTION` of its updates (straight-through
estimator): the model's variables hold the weights on the grid, the gradient computed there
updates a float master copy, and the variables are set to the master copy put on the grid
again. The saved model is the one on the grid, and every metric of the train report is
measured on it. Biases, the embedding table and the input scale are not weights of a
FULLY_CONNECTED and stay as trained (the converter quantizes a bias with the scale
``s_in * scale[c]`` in int32 / int64: its rounding error is far below the weights').

Keras stores a kernel as (inputs, outputs): the output channel is the last axis.
"""

from __future__ import annotations

import numpy as np

# the last fifth of the updates are trained on the grid (the cosine schedule's tail)
QAT_FRACTION = 0.2
LEVELS = 127  # symmetric int8, narrow range: [-127, 127]


def on_grid(kernel: np.ndarray) -> np.ndarray:
    """``kernel`` (inputs, outputs) rounded per output channel to ``scale * q`` with
    ``scale = max|column| / 127`` and integer ``q`` in [-127, 127]; float32 as given.
    A column of zeros stays zero."""
    w = np.asarray(kernel, np.float64)
    peak = np.abs(w).max(axis=0)
    scale = np.where(peak > 0, peak / LEVELS, 1.0)
    return (np.round(w / scale) * scale).astype(np.asarray(kernel).dtype)


def grid_error(kernel: np.ndarray) -> float:
    """max |kernel - on_grid(kernel)| relative to the column's grid step (0 on the grid;
    up to 0.5 off it)."""
    w = np.asarray(kernel, np.float64)
    peak = np.abs(w).max(axis=0)
    scale = np.where(peak > 0, peak / LEVELS, 1.0)
    return float(np.abs(w / scale - np.round(w / scale)).max()) if w.size else 0.0


def grid_kernels(model) -> list:
    """The model's FULLY_CONNECTED weight variables: each SimpleRNN's kernel and
    recurrent kernel, and the head's kernel (not biases, not the embedding)."""
    from elman.train.model import head_layer, recurrent_layers

    kernels = []
    for rnn in recurrent_layers(model):
        kernels += [rnn.cell.kernel, rnn.cell.recurrent_kernel]
    kernels.append(head_layer(model).kernel)
    return kernels


class WeightGridTraining:
    """The straight-through estimator over a Keras model's kernels (see the module)."""

    def __init__(self, model):
        self.variables = grid_kernels(model)
        self.master = [np.array(v.numpy(), np.float32) for v in self.variables]
        self._assign()

    def _assign(self) -> None:
        self.snapped = [on_grid(m) for m in self.master]
        for v, s in zip(self.variables, self.snapped, strict=True):
            v.assign(s)

    def after_update(self) -> None:
        """The optimizer moved the variables (on the grid) by some delta: move the master
        copy by it, and put the variables on the grid again."""
        for i, v in enumerate(self.variables):
            self.master[i] += v.numpy() - self.snapped[i]
        self._assign()
