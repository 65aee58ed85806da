"""Read a Keras 3 model into a :class:`~elman.quantize.float_model.FloatElman`, by structure.

elman runs ``Input -> [Normalization] -> [Masking] -> SimpleRNN(tanh) x 1-3 ->
[Dropout] -> Dense (linear or softmax)``, the head at the last step or at every
step (``return_sequences=True`` on the last recurrent layer, or
``TimeDistributed(Dense)``), and ``Input -> Embedding -> ...`` for text. The
model is found by its graph (the chain of layers from the input to the
output, whatever their names): an adapted ``Normalization`` becomes the stored
per-channel input normalization, ``Dropout`` (and a layer's ``dropout`` /
``recurrent_dropout``) is an identity at inference, a softmax head is kept as
logits plus a flag. Every problem with a model is collected first (like
keras2c) and reported in one :class:`~elman.errors.ModelError`, one line per
problem, before any conversion.

TensorFlow/Keras is imported lazily (only :func:`load_keras_model` imports it;
the rest reads attributes of the objects it is given).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from elman.quantize.float_model import MAX_LAYERS, ElmanLayer, FloatElman

from elman.errors import ModelError

RECURRENT_LAYERS = ("SimpleRNN", "LSTM", "GRU", "RNN", "Bidirectional", "ConvLSTM1D",
                    "ConvLSTM2D", "ConvLSTM3D")
# Identities at inference (Keras runs them with training=False).
INFERENCE_IDENTITIES = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout",
                        "AlphaDropout")
SHAPE = ("Input -> [Normalization] -> [Masking] -> SimpleRNN x 1-3 -> [Dropout] -> Dense "
         "(text: Input -> Embedding -> SimpleRNN x 1-3 -> ...)")
# Keras' Normalization divides by max(sqrt(variance), epsilon).
KERAS_EPSILON = 1e-7


@dataclass(frozen=True, eq=False)
class KerasElman:
    """What elman takes from a Keras model: the float model and how its input is prepared."""

    model: FloatElman
    task: str  # "classification" | "language_model"
    norm_mean: np.ndarray | None = None  # float64 (channels,) of a Normalization layer
    norm_std: np.ndarray | None = None  # float64 (channels,): max(sqrt(variance), 1e-7)
    layers: tuple[str, ...] = ()  # the chain, e.g. ("Normalization", "SimpleRNN(32)", ...)
    notes: tuple[str, ...] = field(default_factory=tuple)  # what was folded or dropped

    @property
    def has_normalization(self) -> bool:
        return self.norm_mean is not None

    def summary(self) -> dict:
        """For reports: the layer chain, the head, and what elman did with each layer."""
        m = self.model
        return {"layers": list(self.layers), "recurrent_layers": m.depth,
                "units": list(m.units), "head_steps": m.head_steps,
                "head_activation": m.head_activation, "notes": list(self.notes)}


def load_keras_model(path: Path | str):
    """Load ``model.keras`` without compiling; a file Keras cannot read is a ModelError."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path} does not exist or is not a file")
    if not zipfile.is_zipfile(path):  # Keras would say "File not found"
        raise ModelError(f"{path} is not a Keras model: a .keras file is a zip archive and "
                         "this one is not (damaged, truncated or another format)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    try:
        return keras.saving.load_model(str(path), compile=False)
    except Exception as exc:  # Keras raises many types for unreadable files
        raise ModelError(f"cannot load {path}: {type(exc).__name__}: {exc}") from None


def read_keras_file(path: Path | str, task: str | None = None) -> KerasElman:
    """:func:`read_keras` of the model saved at ``path``."""
    return read_keras(load_keras_model(path), task, what=str(path))


def _kind(layer) -> str:
    return type(layer).__name__


def _activation_name(fn) -> str:
    return getattr(fn, "__name__", str(fn))


# ---- the chain of layers from the input to the output ------------------------------------


def _tensor_sources(value) -> list[str]:
    """Names of the layers whose outputs appear in a serialized call argument."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [value["config"]["keras_history"][0]]
        return [s for v in value.values() for s in _tensor_sources(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _tensor_sources(v)]
    return []


def layer_chain(model, problems: list[str]) -> list:
    """The layers from the model's input to its output, in order (InputLayer excluded).

    A Sequential model is its layer list. A functional model is walked backwards
    from its one output through each layer's one input; the operations Keras adds
    to compute a ``Masking`` layer's mask (they feed only ``mask=`` arguments) are
    not part of the chain. Branches, several inputs or outputs, shared layers and
    ``initial_state`` arguments are problems.
    """
    config = model.get_config()
    if "input_layers" not in config:  # Sequential
        return [la for la in model.layers if _kind(la) != "InputLayer"]
    by_name = {op.name: op for op in getattr(model, "operations", model.layers)}
    entries = {e["name"]: e for e in config["layers"]}
    outputs = config["output_layers"]
    if outputs and not isinstance(outputs[0], list | tuple):
        outputs = [outputs]
    inputs = config["input_layers"]
    if inputs and not isinstance(inputs[0], list | tuple):
        inputs = [inputs]
    if len(outputs) != 1 or len(inputs) != 1:
        problems.append(f"the model has {len(inputs)} inputs and {len(outputs)} outputs "
                        "(elman runs one input and one output)")
        return []
    chain, mask_sources = [], set()
    name = outputs[0][0]
    while True:
        entry = entries.get(name)
        if entry is None:
            problems.append(f"cannot follow the model's graph at '{name}'")
            return []
        if entry["class_name"] == "InputLayer":
            break
        nodes = entry.get("inbound_nodes") or []
        if len(nodes) != 1:
            problems.append(f"layer '{name}' is called {len(nodes)} times (shared layers are "
                            "not supported)")
            return []
        args, kwargs = nodes[0].get("args", []), nodes[0].get("kwargs", {}) or {}
        sources = _tensor_sources(args)
        for key, value in kwargs.items():
            if key == "mask":
                mask_sources.update(_tensor_sources(value))
            elif _tensor_sources(value):
                problems.append(f"layer '{name}' is called with {key}= from another layer "
                                "(not supported)")
        if len(sources) != 1:
            problems.append(f"layer '{name}' reads {len(sources)} tensors (elman runs a chain "
                            "of layers with one input each)")
            return []
        chain.append(by_name[name])
        name = sources[0]
    chain.reverse()
    on_chain = {la.name for la in chain} | {inputs[0][0]}
    mask_ops = _ancestors(mask_sources, entries) - on_chain
    stray = sorted(set(entries) - on_chain - mask_ops)
    if stray:
        problems.append("layers off the path from the input to the output (branches are not "
                        "supported): " + ", ".join(stray))
    return chain


def _ancestors(names: set[str], entries: dict) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen or name not in entries:
            continue
        seen.add(name)
        for node in entries[name].get("inbound_nodes") or []:
            todo.extend(_tensor_sources(node))
    return seen


# ---- what each layer of the chain means ----------------------------------------------------


def _head_layer(layer):
    """The Dense inside a head (a Dense, or a TimeDistributed(Dense)), else None."""
    if _kind(layer) == "Dense":
        return layer
    if _kind(layer) == "TimeDistributed" and _kind(layer.layer) == "Dense":
        return layer.layer
    return None


def _rnn_problems(layer) -> list[str]:
    out = []
    kind = _kind(layer)
    if kind != "SimpleRNN":
        return [f"layer '{layer.name}' is {kind}: elman supports SimpleRNN (Elman) cells only"]
    act = _activation_name(layer.cell.activation)
    if act != "tanh":
        out.append(f"layer '{layer.name}' uses activation '{act}'; elman needs tanh")
    if not layer.cell.use_bias:
        out.append(f"layer '{layer.name}' has no bias (use_bias=False); elman needs one")
    if layer.return_state:
        out.append(f"layer '{layer.name}' has return_state=True; elman's model returns "
                   "the head's output only")
    if layer.go_backwards:
        out.append(f"layer '{layer.name}' has go_backwards=True (not streamable)")
    return out


def _normalization(layer, problems: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    config = layer.get_config()
    axis = tuple(config.get("axis") or ())
    if config.get("invert"):
        problems.append(f"layer '{layer.name}' is an inverted Normalization (invert=True)")
    if axis not in ((), (-1,), (2,)):
        problems.append(f"layer '{layer.name}' normalizes over axis {axis}; elman normalizes "
                        "per input channel (axis=-1)")
        return None
    mean = np.asarray(layer.mean, np.float64).reshape(-1)
    std = np.maximum(np.sqrt(np.asarray(layer.variance, np.float64).reshape(-1)), KERAS_EPSILON)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        problems.append(f"layer '{layer.name}' has a NaN or infinite mean or variance")
        return None
    return mean, std


@dataclass
class _Chain:
    """The parts of a chain, sorted by role."""

    embedding: object = None
    normalization: object = None
    masking: object = None
    recurrent: list = field(default_factory=list)
    head: object = None  # the layer in the chain (Dense or TimeDistributed)
    head_activation: str = "linear"
    names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _sort_chain(chain: list, problems: list[str]) -> _Chain:
    """Assign every layer a role, checking the order Input -> prefix -> RNNs -> head."""
    parts = _Chain()
    stage = "prefix"  # prefix -> recurrent -> head -> after
    for layer in chain:
        kind = _kind(layer)
        label = kind
        if kind in ("Embedding", "Normalization", "Masking"):
            attr = kind.lower()
            if stage != "prefix" or getattr(parts, attr) is not None or (
                    kind == "Embedding" and (parts.normalization or parts.masking)):
                problems.append(f"layer '{layer.name}' ({kind}) is not where elman expects it: "
                                f"{SHAPE}")
            if kind == "Normalization" and parts.masking is not None:
                problems.append(f"layer '{parts.masking.name}' (Masking) comes before the "
                                "Normalization; put it after (elman masks normalized inputs)")
            setattr(parts, attr, layer)
        elif kind in RECURRENT_LAYERS:
            if stage in ("head", "after"):
                problems.append(f"layer '{layer.name}' ({kind}) comes after the head")
            stage = "recurrent"
            parts.recurrent.append(layer)
            if kind == "SimpleRNN":
                label = f"SimpleRNN({layer.units})"
        elif kind in INFERENCE_IDENTITIES:
            if stage == "prefix":
                problems.append(f"layer '{layer.name}' ({kind}) comes before the recurrent "
                                "layers; elman's step model starts with SimpleRNN")
            parts.notes.append(f"{kind} '{layer.name}': an identity at inference, dropped")
        elif _head_layer(layer) is not None:
            if stage != "recurrent":
                problems.append(f"layer '{layer.name}' ({kind}) is not the one head after the "
                                "recurrent layers")
            stage = "head"
            parts.head = layer
            dense = _head_layer(layer)
            label = f"{kind}({dense.units})" if kind == "Dense" else \
                f"TimeDistributed(Dense({dense.units}))"
            parts.head_activation = _activation_name(dense.activation)
        elif kind in ("Activation", "Softmax") and stage == "head":
            act = "softmax" if kind == "Softmax" else _activation_name(layer.activation)
            if kind == "Softmax" and tuple(np.atleast_1d(layer.axis)) not in ((-1,), (2,), (1,)):
                problems.append(f"layer '{layer.name}' applies softmax over axis {layer.axis}")
            if parts.head_activation != "linear" and act != "linear":
                problems.append(f"layer '{layer.name}' applies {act} after a "
                                f"{parts.head_activation} head")
            elif act != "linear":
                parts.head_activation = act
            stage = "after"
        else:
            problems.append(f"layer '{layer.name}' ({kind}) is not supported: elman runs {SHAPE}")
        parts.names.append(label)
    return parts


def _recurrent_problems(parts: _Chain, task: str) -> list[str]:
    problems = []
    rnns = parts.recurrent
    for la in rnns:
        problems += _rnn_problems(la)
    if not rnns:
        problems.append("the model has no recurrent layer (expected SimpleRNN)")
    elif len(rnns) > MAX_LAYERS:
        problems.append(f"the model has {len(rnns)} recurrent layers "
                        f"({', '.join(la.name for la in rnns)}); elman supports 1 to {MAX_LAYERS}")
    for la in rnns[:-1]:
        if not la.return_sequences:
            problems.append(f"layer '{la.name}' has return_sequences=False but feeds another "
                            "recurrent layer, which needs every step")
    if parts.head is None:
        problems.append("the model has no Dense head after the recurrent layers")
    elif rnns:
        last = rnns[-1]
        if task == "language_model" and not last.return_sequences:
            problems.append(f"layer '{last.name}' has return_sequences=False, but a language "
                            "model answers at every step (return_sequences=True)")
    if parts.head_activation not in ("linear", "softmax"):
        problems.append(f"head '{parts.head.name}' uses activation '{parts.head_activation}'; "
                        "elman's head is linear (logits) or softmax")
    return problems


def _text_problems(parts: _Chain, task: str) -> list[str]:
    problems = []
    if task == "language_model" and parts.embedding is None:
        problems.append("a text model needs one Embedding layer before the SimpleRNN")
    if task == "classification" and parts.embedding is not None:
        problems.append("a classification model takes sensor values, not an Embedding")
    if parts.embedding is not None and parts.embedding.mask_zero:
        problems.append(f"layer '{parts.embedding.name}' has mask_zero=True (masking is not "
                        "supported for text)")
    return problems


def model_problems(model, task: str | None = None) -> list[str]:
    """Every reason ``model`` is not an elman Elman model (empty if it is)."""
    problems: list[str] = []
    _analyze(model, task, problems)
    return problems


def _analyze(model, task: str | None, problems: list[str]) -> _Chain | None:
    chain = layer_chain(model, problems)
    if problems:
        return None
    parts = _sort_chain(chain, problems)
    if task is None:
        task = "language_model" if parts.embedding is not None else "classification"
    problems += _recurrent_problems(parts, task)
    problems += _text_problems(parts, task)
    return parts


def read_keras(model, task: str | None = None, input_dim: int | None = None,
               output_dim: int | None = None, what: str = "the model") -> KerasElman:
    """The float model of a Keras model, or a ModelError listing every problem.

    ``task``: the run's task (``None``: a model with an Embedding is a language
    model, else a classifier). ``input_dim`` / ``output_dim``: the run data's
    channels or vocabulary, and classes; a mismatch is a problem too.
    """
    problems: list[str] = []
    parts = _analyze(model, task, problems)
    task = task or ("language_model" if parts is not None and parts.embedding is not None
                    else "classification")
    built = None
    if parts is not None and not problems:
        built = _build(parts, task, problems)
    if built is not None and not problems:
        m = built.model
        d_in = m.vocab_size if m.embedding is not None else m.input_dim
        if input_dim is not None and d_in != input_dim:
            noun = "vocabulary" if m.embedding is not None else "input channels"
            problems.append(f"the model takes {d_in} {noun}, the run's data has {input_dim}")
        if output_dim is not None and m.output_dim != output_dim:
            problems.append(f"the head has {m.output_dim} outputs, the run's data needs "
                            f"{output_dim}")
        if built.norm_mean is not None and len(built.norm_mean) not in (1, m.input_dim):
            problems.append(f"the Normalization layer has {len(built.norm_mean)} channels, the "
                            f"model takes {m.input_dim}")
    if problems:
        raise ModelError(f"{what} cannot be quantized by elman:\n"
                         + "\n".join(f"  - {p}" for p in problems))
    assert built is not None
    return built


def _build(parts: _Chain, task: str, problems: list[str]) -> KerasElman | None:
    layers = []
    for la in parts.recurrent:
        kernel, recurrent, bias = la.cell.get_weights()
        layers.append(ElmanLayer(kernel, recurrent, bias))
        if la.cell.dropout or la.cell.recurrent_dropout:
            parts.notes.append(f"SimpleRNN '{la.name}': dropout={la.cell.dropout:g}, "
                               f"recurrent_dropout={la.cell.recurrent_dropout:g} are identities "
                               "at inference")
    dense = _head_layer(parts.head)
    weights = dense.get_weights()
    head_bias = weights[1] if dense.use_bias else np.zeros(weights[0].shape[1], np.float32)
    if weights[0].shape[0] != layers[-1].units:
        problems.append(f"head '{parts.head.name}' reads {weights[0].shape[0]} features, the "
                        f"last recurrent layer has {layers[-1].units} units")
        return None
    head_steps = "every" if parts.recurrent[-1].return_sequences else "last"
    if parts.head_activation == "softmax":
        parts.notes.append("softmax head: compiled as logits (argmax unchanged); the generated "
                           "C's float helpers include a softmax")
    norm = None if parts.normalization is None else _normalization(parts.normalization,
                                                                   problems)
    mask_value = None
    if parts.masking is not None:
        mask_value = float(parts.masking.mask_value)
        parts.notes.append(f"Masking '{parts.masking.name}' (mask_value={mask_value:g}): the "
                           "float reference keeps the state over masked steps; the int8 step "
                           "model has no mask (do not call the step on padding)")
    if parts.normalization is not None and norm is not None:
        parts.notes.append(f"Normalization '{parts.normalization.name}': folded into the "
                           "stored per-channel input normalization")
        if np.all(norm[0] == 0) and np.all(norm[1] == 1):
            parts.notes.append(f"Normalization '{parts.normalization.name}' holds mean 0 and "
                               "variance 1: was it ever adapted? (it is an identity)")
    if problems:
        return None
    embedding = None
    if parts.embedding is not None:
        embedding = np.asarray(parts.embedding.get_weights()[0], np.float32)
    model = FloatElman(layers=tuple(layers), head_kernel=weights[0], head_bias=head_bias,
                       head_steps=head_steps, head_activation=parts.head_activation,
                       embedding=embedding, mask_value=mask_value)
    mean = std = None
    if norm is not None:
        mean, std = (np.broadcast_to(v, (model.input_dim,)).copy() if v.size == 1 else v
                     for v in norm)
    return KerasElman(model=model, task=task, norm_mean=mean, norm_std=std,
                      layers=tuple(parts.names), notes=tuple(parts.notes))

