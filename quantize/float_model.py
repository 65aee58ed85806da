"""The float Elman model: what a trained Keras model computes, in numpy, for every stage.

One definition of the float recurrence, used by calibration, ``elman quantize``'s
float-vs-int8 evaluation, ``elman verify``'s float metrics, the training
diagnostics and the report's hidden-state traces. It imports no TensorFlow:
:mod:`elman.quantize.keras_model` reads a Keras model into a
:class:`FloatElman` (by structure, never by layer name), and everything else
runs the numpy arrays.

For ``L`` stacked layers, one step is (``in_1 = x``, ``in_l = h_(l-1)'`` of the
same step)::

    h_l' = tanh(in_l W_x^l + b^l + h_l W_h^l)        l = 1 .. L
    y    = h_L' W_y + b_y                            (logits)

The head answers at the last step of a sequence (``head_steps="last"``) or at
every step (``"every"``); ``head_activation="softmax"`` means the trained model
applied softmax to the logits (argmax is the same). With a Keras ``Masking``
layer, a step whose every input equals ``mask_value`` leaves every state
unchanged, as Keras does.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from elman.quantize.metadata import head_problems

from elman.errors import ModelError

MAX_LAYERS = 3


def _checked(name: str, value: np.ndarray) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise ModelError(f"the {name} weights contain NaN or infinity")
    return arr


@dataclass(frozen=True, eq=False)
class ElmanLayer:
    """Float weights of one Elman layer in Keras layout (``x @ kernel``)."""

    kernel: np.ndarray  # (inputs, units)
    recurrent_kernel: np.ndarray  # (units, units)
    bias: np.ndarray  # (units,)

    def __post_init__(self) -> None:
        for name in ("kernel", "recurrent_kernel", "bias"):
            object.__setattr__(self, name, _checked(name, getattr(self, name)))
        problems = []
        if self.kernel.ndim != 2:
            problems.append(f"kernel {self.kernel.shape} is not a matrix")
        else:
            h = self.kernel.shape[1]
            if self.recurrent_kernel.shape != (h, h):
                problems.append(f"recurrent kernel {self.recurrent_kernel.shape} != ({h}, {h})")
            if self.bias.shape != (h,):
                problems.append(f"bias {self.bias.shape} != ({h},)")
        if problems:
            raise ModelError("inconsistent Elman layer weights: " + "; ".join(problems))

    @property
    def input_dim(self) -> int:
        return int(self.kernel.shape[0])

    @property
    def units(self) -> int:
        return int(self.kernel.shape[1])


@dataclass(frozen=True)
class FloatRun:
    """Every step of a float run: each layer's state and the head's logits."""

    states: tuple[np.ndarray, ...]  # one (B, T, units_l) per layer: h_l after each step
    logits: np.ndarray | None  # (B, T, outputs) at every step (None without a head)

    @property
    def h(self) -> np.ndarray:
        """The whole state after each step, every layer's h in layer order (B, T, sum units):
        the layout of the int8 program's state (``StepOutputs.h``). The head reads
        ``states[-1]``."""
        return self.states[0] if len(self.states) == 1 else np.concatenate(self.states, -1)


@dataclass(frozen=True, eq=False)
class FloatElman:
    """A float Elman model: 1-3 stacked layers and an optional Dense head."""

    layers: tuple[ElmanLayer, ...]
    head_kernel: np.ndarray | None = None  # (units_L, outputs)
    head_bias: np.ndarray | None = None  # (outputs,)
    head_steps: str = "last"
    head_activation: str = "linear"
    embedding: np.ndarray | None = None  # (vocab, input_dim) of a text model
    mask_value: float | None = None  # Keras Masking on the (normalized) input

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        problems = []
        if not 1 <= len(self.layers) <= MAX_LAYERS:
            problems.append(f"{len(self.layers)} layers (elman runs 1 to {MAX_LAYERS})")
        for i, (below, above) in enumerate(pairwise(self.layers), start=2):
            if above.input_dim != below.units:
                problems.append(f"layer {i} reads {above.input_dim} inputs, layer {i - 1} has "
                                f"{below.units} units")
        if (self.head_kernel is None) != (self.head_bias is None):
            problems.append("head kernel and head bias must be given together")
        elif self.head_kernel is not None:
            object.__setattr__(self, "head_kernel", _checked("head kernel", self.head_kernel))
            object.__setattr__(self, "head_bias", _checked("head bias", self.head_bias))
            units = self.layers[-1].units if self.layers else -1
            if self.head_kernel.ndim != 2 or self.head_kernel.shape[0] != units:
                problems.append(f"head kernel {self.head_kernel.shape} does not read "
                                f"{units} units")
            elif self.head_bias.shape != (self.head_kernel.shape[1],):
                problems.append(f"head bias {self.head_bias.shape} does not match the kernel")
        problems += head_problems(self.head_steps, self.head_activation)
        if self.embedding is not None:
            object.__setattr__(self, "embedding", _checked("embedding", self.embedding))
            if self.embedding.ndim != 2 or (self.layers and
                                            self.embedding.shape[1] != self.input_dim):
                problems.append(f"embedding {self.embedding.shape} does not feed "
                                f"{self.input_dim} inputs")
        if problems:
            raise ModelError("inconsistent float model: " + "; ".join(problems))

    # ---- dimensions -------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def input_dim(self) -> int:
        return self.layers[0].input_dim

    @property
    def units(self) -> tuple[int, ...]:
        return tuple(layer.units for layer in self.layers)

    @property
    def output_dim(self) -> int:
        return 0 if self.head_kernel is None else int(self.head_kernel.shape[1])

    @property
    def vocab_size(self) -> int:
        return 0 if self.embedding is None else int(self.embedding.shape[0])

    # ---- computing --------------------------------------------------------------
    def zero_states(self, batch: int, dtype=np.float32) -> tuple[np.ndarray, ...]:
        return tuple(np.zeros((batch, u), dtype) for u in self.units)

    def embed(self, ids: np.ndarray) -> np.ndarray:
        """The input vectors of token ids (text models)."""
        if self.embedding is None:
            raise ValueError("this model has no embedding table")
        return self.embedding[np.asarray(ids)]

    def head(self, h: np.ndarray) -> np.ndarray | None:
        """Logits of last-layer states ``h`` (..., units_L)."""
        if self.head_kernel is None:
            return None
        dtype = h.dtype
        return h @ self.head_kernel.astype(dtype) + self.head_bias.astype(dtype)

    def step(self, x: np.ndarray, states: tuple[np.ndarray, ...]
             ) -> tuple[tuple[np.ndarray, ...], np.ndarray | None]:
        """One step (batched): ``x`` (B, input_dim), states -> (new states, logits)."""
        run = self.run(np.asarray(x)[:, None, :], states, dtype=states[0].dtype)
        return tuple(s[:, 0] for s in run.states), None if run.logits is None \
            else run.logits[:, 0]

    def run(self, x: np.ndarray, initial: tuple[np.ndarray, ...] | None = None, *,
            dtype=np.float32) -> FloatRun:
        """Every step of sequences ``x`` (B, T, input_dim), from ``initial`` (zeros).

        ``dtype``: float32 computes what Keras computes; float64 for diagnostics that
        need more precision.
        """
        x = np.asarray(x, dtype)
        batch, steps, _ = x.shape
        if x.shape[2] != self.input_dim:
            raise ValueError(f"inputs have {x.shape[2]} values per step, the model "
                             f"takes {self.input_dim}")
        states = self.zero_states(batch, dtype) if initial is None else \
            tuple(np.asarray(s, dtype) for s in initial)
        keep = None
        if self.mask_value is not None:
            keep = np.any(x != np.asarray(self.mask_value, dtype), axis=2)  # (B, T)
        layer_in = x
        outs = []
        for layer, h in zip(self.layers, states, strict=True):
            w_h = layer.recurrent_kernel.astype(dtype)
            pre = layer_in @ layer.kernel.astype(dtype) + layer.bias.astype(dtype)
            hs = np.empty((batch, steps, layer.units), dtype)
            for t in range(steps):
                new = np.tanh(pre[:, t] + h @ w_h)
                h = new if keep is None else np.where(keep[:, t, None], new, h)
                hs[:, t] = h
            outs.append(hs)
            layer_in = hs
        return FloatRun(tuple(outs), self.head(outs[-1]))

    def answers(self, logits: np.ndarray) -> np.ndarray:
        """The logits at the steps where the head answers: (B, O) at the last step, or
        (B, T, O) at every step."""
        return logits[:, -1] if self.head_steps == "last" else logits


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (float64)."""
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)
