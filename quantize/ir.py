"""``QuantizedModel``: the one contract between quantization and everything downstream.

The IR is read from a ``.tflite`` step model (``elman.quantize.reader``); it
holds every integer tensor and every scale and zero point *as stored in the
file* (float32 scales widened exactly to Python floats), plus what elman stores
beside the graph in the file's metadata (task, labels, input normalization, the
int8 embedding table of text models, the head's mode, the window length).
Integer multipliers, shifts and tables are derived from the stored scales by an
arithmetic profile (``elman.profiles``), never from the Keras model; this module
imports nothing of elman.

A model is a sequence of typed layers, run in order at every step, and an
optional head. Each layer kind is one frozen dataclass here (``LAYER_KINDS``);
everything else a kind needs (how the reader recognizes it, its reference and
fast steps, its C, its random builder) lives in its room under
``elman.layers``. Today:

``ElmanLayer`` (1 to 3 of them), for ``in`` its input and ``h`` its own int8
state (scale 1/128, zero point 0)::

    a  = FC(in; input_fc)       # W_x, bias; in = x for layer 1, else the layer below's h'
    r  = FC(h; recurrent_fc)    # W_h, no bias
    z  = ADD(a, r)
    h' = TANH(z)                # output scale 1/128, zero point 0 == h's

``DenseHead``: ``y = FC(h'_L; fc)`` (logits) of the last layer's new state,
answering at every step or only at the last step of a window
(``every_step``); a ``softmax`` activation is applied outside the integer
program (argmax is unchanged).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

STATE_SCALE = 1.0 / 128.0
STATE_ZERO_POINT = 0
STATE_SCALE_16 = 1.0 / 32768.0  # TANH's int16 output scale (the 16x8 state)
STATE_BITS = (8, 16)  # int8 activations, or 16x8: int16 activations with int8 weights
TASKS = ("classification", "language_model")
HEAD_ACTIVATIONS = ("linear", "softmax")
ADD_LEFT_SHIFT = 20  # TFLite's int8 ADD: both inputs are shifted left by 20 first
ADD_LEFT_SHIFT_16 = 15  # ... and its int16 ADD (general scales) by 15
MAX_LAYERS = 3
IR_FORMAT_VERSION = 2


def round_half_away_exact(v: np.ndarray) -> np.ndarray:
    """``std::round`` of float64 values, exactly.

    (``trunc(v + 0.5)`` is not: 0.49999999999999994 + 0.5 rounds to 1.0.)
    """
    v = np.asarray(v, dtype=np.float64)
    whole = np.trunc(v)
    return whole + np.trunc(2.0 * (v - whole))  # v - trunc(v) and the doubling are exact


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization of one tensor: ``real = scale * (q - zero_point)``, in ``bits``
    bits (8: int8; 16: int16, the activations of a 16x8 model, zero point 0)."""

    scale: float
    zero_point: int
    bits: int = 8

    def __post_init__(self) -> None:
        if self.bits not in STATE_BITS:
            raise ValueError(f"activations have 8 or 16 bits, got {self.bits}")

    @property
    def dtype(self) -> type:
        return np.int8 if self.bits == 8 else np.int16

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    def quantize(self, real: np.ndarray) -> np.ndarray:
        """int8 (int16) quantization of float values (round half away from zero, saturate)."""
        scaled = np.asarray(real, dtype=np.float64) / self.scale
        # clamp first (saturation is monotone): keeps +-inf finite for the exact rounding
        limit = 4.0 * (1 << self.bits)
        q = round_half_away_exact(np.clip(scaled, -limit, limit))
        return np.clip(q + self.zero_point, self.qmin, self.qmax).astype(self.dtype)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (np.asarray(q, dtype=np.float64) - self.zero_point) * self.scale

    def to_dict(self) -> dict[str, Any]:
        d = {"scale": float(self.scale), "zero_point": int(self.zero_point)}
        if self.bits != 8:
            d["bits"] = self.bits
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantParams:
        return cls(float(d["scale"]), int(d["zero_point"]), int(d.get("bits", 8)))


STATE_QUANT = QuantParams(STATE_SCALE, STATE_ZERO_POINT)
STATE_QUANT_16 = QuantParams(STATE_SCALE_16, 0, 16)


def state_quant(bits: int) -> QuantParams:
    """The pinned state quantization of ``bits``-bit activations (TANH's output)."""
    return STATE_QUANT if bits == 8 else STATE_QUANT_16


def _frozen_array(a: Any, dtype: Any) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class FullyConnected:
    """FULLY_CONNECTED with per-output-channel symmetric int8 weights, on int8 activations
    (int32 bias) or int16 ones (16x8: int64 bias and accumulator).

    ``acc[c] = sum_d weights[c, d] * (q[d] - input.zero_point) + bias[c]``,
    then requantized by ``input.scale * weight_scales[c] / output.scale``.
    """

    weights: np.ndarray  # int8 (out_features, in_features)
    weight_scales: np.ndarray  # float32 (out_features,)
    bias: np.ndarray  # int32 (int64 for int16 inputs) (out_features,); zeros without bias
    has_bias: bool
    input: QuantParams
    output: QuantParams

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", _frozen_array(self.weights, np.int8))
        object.__setattr__(self, "weight_scales", _frozen_array(self.weight_scales, np.float32))
        object.__setattr__(self, "bias", _frozen_array(self.bias, self.bias_dtype))
        out_f, _ = self.weights.shape
        if self.weight_scales.shape != (out_f,) or self.bias.shape != (out_f,):
            raise ValueError("weight_scales and bias must have one entry per output channel")

    @property
    def bias_dtype(self) -> type:
        return np.int32 if self.input.bits == 8 else np.int64

    @property
    def out_features(self) -> int:
        return int(self.weights.shape[0])

    @property
    def in_features(self) -> int:
        return int(self.weights.shape[1])

    @property
    def macs(self) -> int:
        return self.out_features * self.in_features

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": [self.out_features, self.in_features],
            "weights": self.weights.tolist(),
            "weight_scales": [float(s) for s in self.weight_scales],
            "bias": self.bias.tolist(),
            "has_bias": self.has_bias,
            "input": self.input.to_dict(),
            "output": self.output.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FullyConnected:
        out_f, in_f = d["shape"]
        return cls(
            weights=np.array(d["weights"], dtype=np.int8).reshape(out_f, in_f),
            weight_scales=np.array(d["weight_scales"], dtype=np.float32),
            bias=np.array(d["bias"], dtype=np.int64),
            has_bias=bool(d["has_bias"]),
            input=QuantParams.from_dict(d["input"]),
            output=QuantParams.from_dict(d["output"]),
        )


@dataclass(frozen=True)
class Add:
    """int8 ADD of ``a = FC(in)`` (input1) and ``r = FC(h)`` (input2), TFLite's two-stage
    rescale."""

    input1: QuantParams
    input2: QuantParams
    output: QuantParams
    left_shift: int = ADD_LEFT_SHIFT


@dataclass(frozen=True)
class Tanh:
    """TANH; the output is always (1/128, 0) for int8, (1/32768, 0) for int16."""

    input: QuantParams
    output: QuantParams = field(default_factory=lambda: STATE_QUANT)


@dataclass(frozen=True, eq=False)
class ElmanLayer:
    """One Elman layer: ``h' = TANH(ADD(FC(in; W_x, b), FC(h; W_h)))``, state pinned to
    TANH's output, (1/128, 0) in int8 or (1/32768, 0) in int16, so that ``h'``'s values
    feed back as ``h`` unchanged."""

    input_fc: FullyConnected  # W_x: (units, input_dim), with the layer's bias
    recurrent_fc: FullyConnected  # W_h: (units, units), input quantization (1/128, 0)
    add: Add
    tanh: Tanh
    kind: ClassVar[str] = "elman"

    def __post_init__(self) -> None:
        problems = []
        if self.input_fc.out_features != self.recurrent_fc.out_features:
            problems.append(f"FC(x) has {self.input_fc.out_features} outputs but FC(h) has "
                            f"{self.recurrent_fc.out_features}")
        if self.recurrent_fc.in_features != self.recurrent_fc.out_features:
            problems.append("FC(h)'s weights are not square")
        bits = self.tanh.output.bits
        if self.recurrent_fc.input != state_quant(bits) or self.tanh.output != state_quant(bits):
            problems.append("the state is not quantized (1/128, 0) in int8 or "
                            "(1/32768, 0) in int16")
        if problems:
            raise ValueError("inconsistent Elman layer: " + "; ".join(problems))

    @property
    def input_dim(self) -> int:
        return self.input_fc.in_features

    @property
    def units(self) -> int:
        return self.recurrent_fc.out_features

    @property
    def state_bits(self) -> int:
        """8 (int8 state) or 16 (int16 state)."""
        return self.tanh.output.bits

    @property
    def state_bytes(self) -> int:
        """Values (int8 or int16) of this layer's state."""
        return self.units

    @property
    def input_quant(self) -> QuantParams:
        return self.input_fc.input

    @property
    def output_quant(self) -> QuantParams:
        """The quantization of ``h'`` (what the next layer or the head reads)."""
        return self.tanh.output

    @property
    def macs(self) -> int:
        return self.input_fc.macs + self.recurrent_fc.macs

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "input_fc": self.input_fc.to_dict(),
            "recurrent_fc": self.recurrent_fc.to_dict(),
            "add": {"input1": self.add.input1.to_dict(), "input2": self.add.input2.to_dict(),
                    "output": self.add.output.to_dict(), "left_shift": self.add.left_shift},
            "tanh": {"input": self.tanh.input.to_dict(), "output": self.tanh.output.to_dict()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ElmanLayer:
        add = d["add"]
        return cls(
            input_fc=FullyConnected.from_dict(d["input_fc"]),
            recurrent_fc=FullyConnected.from_dict(d["recurrent_fc"]),
            add=Add(QuantParams.from_dict(add["input1"]), QuantParams.from_dict(add["input2"]),
                    QuantParams.from_dict(add["output"]), int(add["left_shift"])),
            tanh=Tanh(QuantParams.from_dict(d["tanh"]["input"]),
                      QuantParams.from_dict(d["tanh"]["output"])),
        )


@dataclass(frozen=True, eq=False)
class DenseHead:
    """``y = FC(h'; W_y, b_y)``: logits of the last layer's new state.

    ``every_step``: the model answers at every step (streaming, per-step labels,
    language models) or only at the last step of a window (a sequence classifier).
    ``activation``: ``softmax`` heads are compiled as logits plus a float softmax
    helper outside the integer step; argmax is the same either way.
    """

    fc: FullyConnected
    every_step: bool
    activation: str = "linear"
    kind: ClassVar[str] = "dense"

    def __post_init__(self) -> None:
        if self.activation not in HEAD_ACTIVATIONS:
            raise ValueError(f"head activation must be one of {HEAD_ACTIVATIONS}, "
                             f"got {self.activation!r}")

    @property
    def input_dim(self) -> int:
        return self.fc.in_features

    @property
    def output_dim(self) -> int:
        return self.fc.out_features

    @property
    def output_quant(self) -> QuantParams:
        return self.fc.output

    @property
    def macs(self) -> int:
        return self.fc.macs

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "fc": self.fc.to_dict(), "every_step": self.every_step,
                "activation": self.activation}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DenseHead:
        return cls(FullyConnected.from_dict(d["fc"]), bool(d["every_step"]),
                   str(d["activation"]))


# The IR class of each layer kind, by name (JSON ``"kind"``); see ``elman.layers``.
LAYER_KINDS: dict[str, type] = {ElmanLayer.kind: ElmanLayer}
HEAD_KINDS: dict[str, type] = {DenseHead.kind: DenseHead}
Layer = ElmanLayer  # the recurrent layer kinds (a union when there are more)
Head = DenseHead


@dataclass(frozen=True)
class StepSignature:
    """Positions of the step model's tensors in the subgraph's input and output lists
    (the index an interpreter's ``set_input`` / ``get_output`` takes): ``x``, then
    each layer's state input ``h_l`` and new state ``h_l'``, and ``y``."""

    x_input: int
    h_inputs: tuple[int, ...]
    h_outputs: tuple[int, ...]
    y_output: int | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "h_inputs", tuple(int(i) for i in self.h_inputs))
        object.__setattr__(self, "h_outputs", tuple(int(i) for i in self.h_outputs))

    def to_dict(self) -> dict[str, Any]:
        return {"x_input": self.x_input, "h_inputs": list(self.h_inputs),
                "h_outputs": list(self.h_outputs), "y_output": self.y_output}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StepSignature:
        return cls(int(d["x_input"]), tuple(d["h_inputs"]), tuple(d["h_outputs"]),
                   None if d["y_output"] is None else int(d["y_output"]))


@dataclass(frozen=True, eq=False)
class QuantizedModel:
    """An int8 step model of 1 to 3 stacked layers and an optional head, read from a
    ``.tflite`` file. The state of the whole model is every layer's state, in layer
    order (``state_bytes`` int8 values; ``state_slices`` cut it per layer)."""

    task: str  # "classification" | "language_model"
    layers: tuple[Layer, ...]
    head: Head | None
    signature: StepSignature
    labels: tuple[str, ...] = ()  # class names, or the vocabulary of a text model
    embedding: np.ndarray | None = None  # int8 (vocab, input_dim), quantized with input_quant
    norm_mean: np.ndarray | None = None  # float32 (input_dim,) for sensor inputs
    norm_std: np.ndarray | None = None  # float32 (input_dim,)
    window_steps: int = 0  # steps of the windows a classifier was trained on; 0: it streams
    input_stride: int = 1  # one step per input_stride samples of the recording
    stride_mode: str = "sample"  # with a stride: "mean" of its samples | "sample": the first
    # | "stack": all of them side by side (input_dim = input_stride x raw channels)
    # each raw sample's channels followed by their first differences (x[t] - x[t - 1], 0 at
    # the first sample), made on the device before the stride: 2 x the raw channels
    input_deltas: bool = False
    source_sha256: str = ""
    model_bytes: int = 0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        object.__setattr__(self, "layers", tuple(self.layers))
        if not 1 <= len(self.layers) <= MAX_LAYERS:
            raise ValueError(f"a model has 1 to {MAX_LAYERS} layers, got {len(self.layers)}")
        pairs = zip(self.layers, self.layers[1:], strict=False)
        for i, (below, above) in enumerate(pairs, start=2):
            if above.input_dim != below.units or above.input_quant != below.output_quant:
                raise ValueError(f"layer {i} does not read layer {i - 1}'s state")
        if self.head is not None and self.head.input_dim != self.layers[-1].units:
            raise ValueError(f"the head reads {self.head.input_dim} features, the last layer "
                             f"has {self.layers[-1].units} units")
        sig = self.signature
        if len(sig.h_inputs) != len(self.layers) or len(sig.h_outputs) != len(self.layers) \
                or (sig.y_output is None) != (self.head is None):
            raise ValueError("the signature does not match the layers and head")
        if self.window_steps < 0:
            raise ValueError(f"window_steps must be >= 0, got {self.window_steps}")
        if self.input_stride < 1 or self.stride_mode not in ("mean", "sample", "stack"):
            raise ValueError(f"input_stride must be >= 1 and stride_mode mean, sample or "
                             f"stack, got {self.input_stride}, {self.stride_mode!r}")
        if self.stride_mode == "stack" and self.input_dim % self.input_stride:
            raise ValueError(f"stride_mode stack reads {self.input_stride} samples per step: "
                             f"the input ({self.input_dim}) must be a multiple of it")
        if self.input_deltas and (self.task != "classification" or self.input_dim % (
                2 * (self.input_stride if self.stride_mode == "stack" else 1))):
            raise ValueError(f"input_deltas: a classifier whose input ({self.input_dim}) holds "
                             "each raw channel and its first difference")
        object.__setattr__(self, "input_deltas", bool(self.input_deltas))
        if any(layer.state_bits != self.layers[0].state_bits for layer in self.layers):
            raise ValueError("every layer's state must have the same width")
        if self.embedding is not None:
            object.__setattr__(self, "embedding",
                               _frozen_array(self.embedding, self.input_quant.dtype))
        for name in ("norm_mean", "norm_std"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, _frozen_array(v, np.float32))
        object.__setattr__(self, "labels", tuple(self.labels))

    # ---- dimensions -------------------------------------------------------------
    @property
    def input_dim(self) -> int:
        return self.layers[0].input_dim

    @property
    def layer_units(self) -> tuple[int, ...]:
        return tuple(layer.units for layer in self.layers)

    @property
    def state_bytes(self) -> int:
        """int8 values of the whole state (every layer's ``h``)."""
        return sum(layer.state_bytes for layer in self.layers)

    @property
    def state_slices(self) -> tuple[slice, ...]:
        """Where each layer's ``h`` lies in the whole state."""
        out, start = [], 0
        for layer in self.layers:
            out.append(slice(start, start + layer.state_bytes))
            start += layer.state_bytes
        return tuple(out)

    @property
    def output_dim(self) -> int:
        return self.head.output_dim if self.head is not None else 0

    @property
    def vocab_size(self) -> int:
        return 0 if self.embedding is None else int(self.embedding.shape[0])

    @property
    def input_quant(self) -> QuantParams:
        return self.layers[0].input_quant

    @property
    def state_bits(self) -> int:
        """8 (int8 activations and state) or 16 (16x8: int16 activations and state)."""
        return self.layers[0].state_bits

    @property
    def state_dtype(self) -> type:
        return np.int8 if self.state_bits == 8 else np.int16

    @property
    def state_quant(self) -> QuantParams:
        """Every layer's state quantization (pinned to TANH's output: (1/128, 0), or
        (1/32768, 0) for an int16 state)."""
        return state_quant(self.state_bits)

    @property
    def output_quant(self) -> QuantParams | None:
        return self.head.output_quant if self.head is not None else None

    @property
    def head_every_step(self) -> bool:
        return self.head is not None and self.head.every_step

    @property
    def macs_per_step(self) -> int:
        """Multiply-accumulates of one step (every layer's matrices and the head's)."""
        return sum(layer.macs for layer in self.layers) + (
            self.head.macs if self.head is not None else 0)

    # ---- JSON round trip --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": IR_FORMAT_VERSION,
            "task": self.task,
            "dims": {"input_dim": self.input_dim, "layer_units": list(self.layer_units),
                     "output_dim": self.output_dim, "vocab_size": self.vocab_size},
            "layers": [layer.to_dict() for layer in self.layers],
            "head": None if self.head is None else self.head.to_dict(),
            "signature": self.signature.to_dict(),
            "labels": list(self.labels),
            "embedding": None if self.embedding is None else self.embedding.tolist(),
            "norm_mean": None if self.norm_mean is None else [float(v) for v in self.norm_mean],
            "norm_std": None if self.norm_std is None else [float(v) for v in self.norm_std],
            "window_steps": self.window_steps,
            "input_stride": self.input_stride,
            "stride_mode": self.stride_mode,
            "input_deltas": self.input_deltas,
            "source_sha256": self.source_sha256,
            "model_bytes": self.model_bytes,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantizedModel:
        if d.get("format_version") != IR_FORMAT_VERSION:
            raise ValueError(f"unsupported IR format version {d.get('format_version')!r} "
                             f"(this elman reads version {IR_FORMAT_VERSION})")
        return cls(
            task=d["task"],
            layers=tuple(_of_kind(LAYER_KINDS, layer) for layer in d["layers"]),
            head=None if d["head"] is None else _of_kind(HEAD_KINDS, d["head"]),
            signature=StepSignature.from_dict(d["signature"]),
            labels=tuple(d["labels"]),
            embedding=None if d["embedding"] is None else np.array(d["embedding"], np.int64)
            .reshape(-1, d["dims"]["input_dim"]),
            norm_mean=None if d["norm_mean"] is None else np.array(d["norm_mean"], np.float32),
            norm_std=None if d["norm_std"] is None else np.array(d["norm_std"], np.float32),
            window_steps=int(d["window_steps"]),
            input_stride=int(d.get("input_stride", 1)),
            stride_mode=d.get("stride_mode", "sample"),
            input_deltas=bool(d.get("input_deltas", False)),
            source_sha256=d["source_sha256"],
            model_bytes=int(d["model_bytes"]),
        )

    @classmethod
    def from_json(cls, text: str) -> QuantizedModel:
        return cls.from_dict(json.loads(text))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantizedModel):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def _of_kind(kinds: dict[str, type], d: dict[str, Any]):
    kind = d.get("kind")
    if kind not in kinds:
        raise ValueError(f"unknown layer kind {kind!r}; this elman knows {sorted(kinds)}")
    return kinds[kind].from_dict(d)
