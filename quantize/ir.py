"""``QuantizedRNN``: the one contract between quantization and everything downstream.

The IR is read from a ``.tflite`` step model (``elman.quantize.reader``); it
holds every integer tensor and every scale and zero point *as stored in the
file* (float32 scales widened exactly to Python floats), plus what elman stores
beside the graph in the file's metadata (task, labels, input normalization,
the int8 embedding table of text models). Integer multipliers, shifts and
tables are derived from the stored scales by an arithmetic profile
(``elman.profiles``), never from the Keras model; this module imports nothing
of elman.

The step it describes, for ``x`` the int8 input and ``h`` the int8 state
(scale 1/128, zero point 0)::

    a  = FC(x; input_fc)        # W_x, bias
    r  = FC(h; recurrent_fc)    # W_h, no bias
    z  = ADD(a, r)
    h' = TANH(z)                # output scale 1/128, zero point 0 == h's
    y  = FC(h'; head)           # W_y, bias (when the model has a head)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STATE_SCALE = 1.0 / 128.0
STATE_ZERO_POINT = 0
TASKS = ("classification", "language_model")
ADD_LEFT_SHIFT = 20  # TFLite's int8 ADD: both inputs are shifted left by 20 first
IR_FORMAT_VERSION = 1


def round_half_away_exact(v: np.ndarray) -> np.ndarray:
    """``std::round`` of float64 values, exactly.

    (``trunc(v + 0.5)`` is not: 0.49999999999999994 + 0.5 rounds to 1.0.)
    """
    v = np.asarray(v, dtype=np.float64)
    whole = np.trunc(v)
    return whole + np.trunc(2.0 * (v - whole))  # v - trunc(v) and the doubling are exact


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization of one tensor: ``real = scale * (q - zero_point)``."""

    scale: float
    zero_point: int

    def quantize(self, real: np.ndarray) -> np.ndarray:
        """int8 quantization of float values (round half away from zero, saturate)."""
        scaled = np.asarray(real, dtype=np.float64) / self.scale
        # clamp first (saturation is monotone): keeps +-inf finite for the exact rounding
        q = round_half_away_exact(np.clip(scaled, -512.0, 512.0))
        return np.clip(q + self.zero_point, -128, 127).astype(np.int8)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (np.asarray(q, dtype=np.float64) - self.zero_point) * self.scale


def _frozen_array(a: Any, dtype: Any) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class FullyConnected:
    """int8 FULLY_CONNECTED with per-output-channel symmetric weights.

    ``acc[c] = sum_d weights[c, d] * (q[d] - input.zero_point) + bias[c]``,
    then requantized by ``input.scale * weight_scales[c] / output.scale``.
    """

    weights: np.ndarray  # int8 (out_features, in_features)
    weight_scales: np.ndarray  # float32 (out_features,)
    bias: np.ndarray  # int32 (out_features,); zeros when has_bias is False
    has_bias: bool
    input: QuantParams
    output: QuantParams

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", _frozen_array(self.weights, np.int8))
        object.__setattr__(self, "weight_scales", _frozen_array(self.weight_scales, np.float32))
        object.__setattr__(self, "bias", _frozen_array(self.bias, np.int32))
        out_f, _ = self.weights.shape
        if self.weight_scales.shape != (out_f,) or self.bias.shape != (out_f,):
            raise ValueError("weight_scales and bias must have one entry per output channel")

    @property
    def out_features(self) -> int:
        return int(self.weights.shape[0])

    @property
    def in_features(self) -> int:
        return int(self.weights.shape[1])



@dataclass(frozen=True)
class Add:
    """int8 ADD of ``a = FC(x)`` (input1) and ``r = FC(h)`` (input2), TFLite's two-stage rescale."""

    input1: QuantParams
    input2: QuantParams
    output: QuantParams
    left_shift: int = ADD_LEFT_SHIFT


@dataclass(frozen=True)
class Tanh:
    """int8 TANH; the output is always (1/128, 0)."""

    input: QuantParams
    output: QuantParams = field(default_factory=lambda: QuantParams(STATE_SCALE, STATE_ZERO_POINT))


@dataclass(frozen=True)
class StepSignature:
    """Positions of the step model's tensors in the subgraph's input and output lists
    (the index an interpreter's ``set_input`` / ``get_output`` takes)."""

    x_input: int
    h_input: int
    h_output: int
    y_output: int | None


@dataclass(frozen=True, eq=False)
class QuantizedRNN:
    """An int8 Elman step model, read from a ``.tflite`` file."""

    task: str  # "classification" | "language_model"
    input_fc: FullyConnected  # W_x: (units, input_dim), with the RNN's bias
    recurrent_fc: FullyConnected  # W_h: (units, units), input quantization (1/128, 0)
    add: Add
    tanh: Tanh
    head: FullyConnected | None  # W_y: (outputs, units)
    signature: StepSignature
    labels: tuple[str, ...] = ()  # class names, or the vocabulary of a text model
    embedding: np.ndarray | None = None  # int8 (vocab, input_dim), quantized with input_fc.input
    norm_mean: np.ndarray | None = None  # float32 (input_dim,) for sensor inputs
    norm_std: np.ndarray | None = None  # float32 (input_dim,)
    source_sha256: str = ""
    model_bytes: int = 0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.embedding is not None:
            object.__setattr__(self, "embedding", _frozen_array(self.embedding, np.int8))
        for name in ("norm_mean", "norm_std"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, _frozen_array(v, np.float32))
        object.__setattr__(self, "labels", tuple(self.labels))

    # ---- dimensions -------------------------------------------------------------
    @property
    def input_dim(self) -> int:
        return self.input_fc.in_features

    @property
    def units(self) -> int:
        return self.input_fc.out_features

    @property
    def output_dim(self) -> int:
        return self.head.out_features if self.head is not None else 0

    @property
    def vocab_size(self) -> int:
        return 0 if self.embedding is None else int(self.embedding.shape[0])

    @property
    def input_quant(self) -> QuantParams:
        return self.input_fc.input

    @property
    def state_quant(self) -> QuantParams:
        return self.recurrent_fc.input

    @property
    def output_quant(self) -> QuantParams | None:
        return self.head.output if self.head is not None else None

    @property
    def macs_per_step(self) -> int:
        """Multiply-accumulates of one step (input, recurrent and head matrices)."""
        return self.units * (self.input_dim + self.units + self.output_dim)

    # ---- JSON round trip --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": IR_FORMAT_VERSION,
            "task": self.task,
            "dims": {"input_dim": self.input_dim, "units": self.units,
                     "output_dim": self.output_dim, "vocab_size": self.vocab_size},
            "input_fc": _fc_to_dict(self.input_fc),
            "recurrent_fc": _fc_to_dict(self.recurrent_fc),
            "add": {"input1": _qp(self.add.input1), "input2": _qp(self.add.input2),
                    "output": _qp(self.add.output), "left_shift": self.add.left_shift},
            "tanh": {"input": _qp(self.tanh.input), "output": _qp(self.tanh.output)},
            "head": None if self.head is None else _fc_to_dict(self.head),
            "signature": {"x_input": self.signature.x_input, "h_input": self.signature.h_input,
                          "h_output": self.signature.h_output,
                          "y_output": self.signature.y_output},
            "labels": list(self.labels),
            "embedding": None if self.embedding is None else self.embedding.tolist(),
            "norm_mean": None if self.norm_mean is None else [float(v) for v in self.norm_mean],
            "norm_std": None if self.norm_std is None else [float(v) for v in self.norm_std],
            "source_sha256": self.source_sha256,
            "model_bytes": self.model_bytes,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantizedRNN:
        if d.get("format_version") != IR_FORMAT_VERSION:
            raise ValueError(f"unsupported IR format version {d.get('format_version')!r}")
        add = d["add"]
        sig = d["signature"]
        return cls(
            task=d["task"],
            input_fc=_fc_from_dict(d["input_fc"]),
            recurrent_fc=_fc_from_dict(d["recurrent_fc"]),
            add=Add(_qp_from(add["input1"]), _qp_from(add["input2"]), _qp_from(add["output"]),
                    int(add["left_shift"])),
            tanh=Tanh(_qp_from(d["tanh"]["input"]), _qp_from(d["tanh"]["output"])),
            head=None if d["head"] is None else _fc_from_dict(d["head"]),
            signature=StepSignature(int(sig["x_input"]), int(sig["h_input"]),
                                    int(sig["h_output"]),
                                    None if sig["y_output"] is None else int(sig["y_output"])),
            labels=tuple(d["labels"]),
            embedding=None if d["embedding"] is None else np.array(d["embedding"], np.int8)
            .reshape(-1, d["dims"]["input_dim"]),
            norm_mean=None if d["norm_mean"] is None else np.array(d["norm_mean"], np.float32),
            norm_std=None if d["norm_std"] is None else np.array(d["norm_std"], np.float32),
            source_sha256=d["source_sha256"],
            model_bytes=int(d["model_bytes"]),
        )

    @classmethod
    def from_json(cls, text: str) -> QuantizedRNN:
        return cls.from_dict(json.loads(text))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantizedRNN):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def _qp(q: QuantParams) -> dict[str, Any]:
    return {"scale": float(q.scale), "zero_point": int(q.zero_point)}


def _qp_from(d: dict[str, Any]) -> QuantParams:
    return QuantParams(float(d["scale"]), int(d["zero_point"]))


def _fc_to_dict(fc: FullyConnected) -> dict[str, Any]:
    return {
        "shape": [fc.out_features, fc.in_features],
        "weights": fc.weights.tolist(),
        "weight_scales": [float(s) for s in fc.weight_scales],
        "bias": fc.bias.tolist(),
        "has_bias": fc.has_bias,
        "input": _qp(fc.input),
        "output": _qp(fc.output),
    }


def _fc_from_dict(d: dict[str, Any]) -> FullyConnected:
    out_f, in_f = d["shape"]
    return FullyConnected(
        weights=np.array(d["weights"], dtype=np.int8).reshape(out_f, in_f),
        weight_scales=np.array(d["weight_scales"], dtype=np.float32),
        bias=np.array(d["bias"], dtype=np.int32),
        has_bias=bool(d["has_bias"]),
        input=_qp_from(d["input"]),
        output=_qp_from(d["output"]),
    )
