"""Read a trained ``model.keras`` into float step weights, refusing what elman cannot run.

elman quantizes ``[Embedding] -> SimpleRNN(tanh, bias) -> Dense(linear)``. Every
problem with a model is collected first (like keras2c) and reported in one
:class:`~elman.errors.ModelError`, one line per problem, before any conversion.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from elman.quantize.step_model import StepWeights

from elman.errors import ModelError

RECURRENT_LAYERS = ("SimpleRNN", "LSTM", "GRU", "RNN", "Bidirectional", "ConvLSTM1D",
                    "ConvLSTM2D", "ConvLSTM3D", "TimeDistributed")
IGNORED_LAYERS = ("InputLayer",)


@dataclass(frozen=True, eq=False)
class KerasCell:
    """What the step model needs from a trained Keras model."""

    weights: StepWeights
    embedding: np.ndarray | None  # float32 (vocab, embedding_dim) for text models


def load_keras_model(path: Path | str):
    """Load ``model.keras`` without compiling; a file Keras cannot read is a ModelError."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    try:
        return keras.saving.load_model(str(path), compile=False)
    except Exception as exc:  # Keras raises many types for unreadable files
        raise ModelError(f"cannot load {path}: {type(exc).__name__}: {exc}") from None


def _activation_name(fn) -> str:
    return getattr(fn, "__name__", str(fn))


def model_problems(model, task: str, input_dim: int | None = None,
                   output_dim: int | None = None) -> list[str]:
    """Every reason ``model`` is not an elman Elman model for ``task`` (empty if it is)."""
    problems: list[str] = []
    layers = [la for la in model.layers if type(la).__name__ not in IGNORED_LAYERS]
    kinds = [type(la).__name__ for la in layers]
    recurrent = [la for la in layers if type(la).__name__ in RECURRENT_LAYERS]
    for la in recurrent:
        kind = type(la).__name__
        if kind != "SimpleRNN":
            problems.append(f"layer '{la.name}' is {kind}: elman supports SimpleRNN (Elman) "
                            "cells only")
    simple = [la for la in recurrent if type(la).__name__ == "SimpleRNN"]
    if not recurrent:
        problems.append("the model has no recurrent layer (expected one SimpleRNN)")
    elif len(recurrent) > 1:
        problems.append(f"the model has {len(recurrent)} recurrent layers "
                        f"({', '.join(la.name for la in recurrent)}); elman supports exactly one")
    for la in simple:
        act = _activation_name(la.cell.activation)
        if act != "tanh":
            problems.append(f"layer '{la.name}' uses activation '{act}'; elman needs tanh")
        if not la.cell.use_bias:
            problems.append(f"layer '{la.name}' has no bias (use_bias=False); elman needs one")
        if la.return_state:
            problems.append(f"layer '{la.name}' has return_state=True; elman's model returns "
                            "the head's output only")
        if la.go_backwards:
            problems.append(f"layer '{la.name}' has go_backwards=True (not streamable)")
        if la.stateful:
            problems.append(f"layer '{la.name}' is stateful; save the model non-stateful")
        want_seq = task == "language_model"
        if la.return_sequences != want_seq:
            problems.append(f"layer '{la.name}' has return_sequences={la.return_sequences}, "
                            f"but a {task} model needs return_sequences={want_seq}")
    dense = [la for la in layers if type(la).__name__ == "Dense"]
    if not dense:
        problems.append("the model has no Dense head after the recurrent layer")
    elif len(dense) > 1:
        problems.append(f"the model has {len(dense)} Dense layers "
                        f"({', '.join(la.name for la in dense)}); elman supports one head")
    for la in dense:
        act = _activation_name(la.activation)
        if act != "linear":
            problems.append(f"head '{la.name}' uses activation '{act}'; elman's head outputs "
                            "logits (activation=None)")
    embeddings = [la for la in layers if type(la).__name__ == "Embedding"]
    if task == "language_model" and len(embeddings) != 1:
        problems.append(f"a text model needs one Embedding layer before the SimpleRNN, "
                        f"found {len(embeddings)}")
    if task == "classification" and embeddings:
        problems.append("a classification model takes sensor values, not an Embedding")
    for la in embeddings:
        if la.mask_zero:
            problems.append(f"layer '{la.name}' has mask_zero=True (masking is not supported)")
    known = {"SimpleRNN", "Dense", "Embedding", *RECURRENT_LAYERS}
    for la, kind in zip(layers, kinds, strict=True):
        if kind not in known:
            problems.append(f"layer '{la.name}' ({kind}) is not supported: elman runs "
                            "[Embedding] -> SimpleRNN -> Dense")
    expected = (["Embedding"] if task == "language_model" else []) + ["SimpleRNN", "Dense"]
    if not problems and kinds != expected:
        problems.append(f"the layers are {' -> '.join(kinds)}, expected {' -> '.join(expected)}")
    if not problems:
        rnn, head = simple[0], dense[0]
        kernel = rnn.cell.get_weights()[0]
        units = kernel.shape[1]
        d_in = embeddings[0].input_dim if embeddings else kernel.shape[0]
        if input_dim is not None and d_in != input_dim:
            what = "vocabulary" if embeddings else "input channels"
            problems.append(f"the model takes {d_in} {what}, the run's data has {input_dim}")
        outs = head.get_weights()[0].shape[1]
        if output_dim is not None and outs != output_dim:
            problems.append(f"the head has {outs} outputs, the run's data needs {output_dim}")
        if head.get_weights()[0].shape[0] != units:
            problems.append("the head does not read the recurrent layer's state")
    return problems


def keras_cell(model, task: str, input_dim: int | None = None,
               output_dim: int | None = None, what: str = "the model") -> KerasCell:
    """The float cell of ``model``, or a ModelError listing every problem."""
    problems = model_problems(model, task, input_dim, output_dim)
    if problems:
        raise ModelError(f"{what} cannot be quantized by elman:\n"
                         + "\n".join(f"  - {p}" for p in problems))
    layers = {type(la).__name__: la for la in model.layers}
    rnn, head = layers["SimpleRNN"], layers["Dense"]
    kernel, recurrent, bias = rnn.cell.get_weights()
    head_w = head.get_weights()
    head_bias = head_w[1] if head.use_bias else np.zeros(head_w[0].shape[1], np.float32)
    embedding = None
    if "Embedding" in layers:
        embedding = np.asarray(layers["Embedding"].get_weights()[0], np.float32)
    return KerasCell(
        weights=StepWeights(kernel=kernel, recurrent_kernel=recurrent, bias=bias,
                            head_kernel=head_w[0], head_bias=head_bias),
        embedding=embedding,
    )
