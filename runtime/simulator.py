"""The integer program of a ``QuantizedModel``, bit-exact, vectorized over a batch.

``Simulator(model, profile)`` computes, per step and for every sequence of a
batch, exactly the int8 values the chosen interpreter computes (see
``elman.profiles`` for the arithmetic profiles): each layer in order, then the
head. Since layer ``l`` at step ``t`` needs only layer ``l - 1`` at step ``t``
and itself at ``t - 1``, a whole sequence runs layer by layer: every step of
layer 1, then every step of layer 2 on layer 1's states, and so on, then the
head on the last layer's states.

Two engines compute the same values (``engine=``): ``numpy``, the reference
engine (each layer kind's ``elman.layers.<kind>.engine``), and ``numba``, the
same loops compiled (``elman.layers.<kind>.compiled``), several times faster
and the default where numba imports. ``auto`` picks ``numba`` unless the
environment variable ``ELMAN_SIMULATOR_ENGINE`` names the other. Tests and
``elman verify`` prove the two equal, value for value, and both equal the plain
integer reference program (``elman.runtime.reference``).
"""

from __future__ import annotations

import os

import numpy as np
from elman.layers import kind_module
from elman.profiles import check_profile, get_profile
from elman.quantize.ir import QuantizedModel
from elman.runtime.compiled import check_loop, numba_available
from elman.runtime.outputs import StepOutputs

ENGINES = ("auto", "numpy", "numba")
ENGINE_ENV = "ELMAN_SIMULATOR_ENGINE"


def resolve_engine(engine: str = "auto", profile: str | None = None) -> str:
    """``numpy`` or ``numba`` for ``engine`` (``auto``: the environment's choice, else
    numba where it imports and knows the requantization of ``profile``)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown simulator engine {engine!r}; choose one of {ENGINES}")
    if engine == "auto":
        engine = os.environ.get(ENGINE_ENV, "").strip().lower() or "auto"
        if engine not in ENGINES:
            raise ValueError(f"{ENGINE_ENV}={engine!r}: choose one of {ENGINES}")
    compiled = profile is None or get_profile(profile).compiled_requantization is not None
    if engine == "auto":
        return "numba" if numba_available() and compiled else "numpy"
    if engine == "numba" and not numba_available():
        raise ValueError("the numba engine needs the numba package (pip install numba)")
    if engine == "numba" and not compiled:
        raise ValueError(f"the numba engine has no requantization of profile {profile!r}; "
                         "use the numpy engine")
    return engine


class Simulator:
    """Bit-exact int8 simulator of a :class:`QuantizedModel`.

    ``engine``: ``numpy`` (the reference engine), ``numba`` (compiled, same values) or
    ``auto`` (see the module docstring); ``self.engine`` is the one in use.
    """

    def __init__(self, model: QuantizedModel, profile: str = "tflm", engine: str = "auto"):
        self.model = model
        self.profile = check_profile(profile)
        self.engine = resolve_engine(engine, profile)
        part, name = ("compiled", "Compiled") if self.engine == "numba" else ("engine", "Engine")
        self._layers = [getattr(kind_module(layer.kind, part), name)(layer, profile)
                        for layer in model.layers]
        self._head = None if model.head is None else getattr(
            kind_module(model.head.kind, part), name)(model.head, profile)
        self._states = self._zero_states(1)

    # ---- whole sequences -----------------------------------------------------------------
    def run(self, x_q: np.ndarray, *, loop: str | None = None) -> StepOutputs:
        """Run int8 inputs (B, T, D) from the zero state; the outputs of every step.

        Does not touch the streaming state of ``reset`` / ``step``. ``loop`` (numba
        engine only, for tests) forces every layer's ``sequential`` or ``batched`` loop.
        """
        x_q = self._check_inputs(np.asarray(x_q), ndim=3)
        return self._run(x_q, self._zero_states(x_q.shape[0]), check_loop(loop))

    def run_tokens(self, ids: np.ndarray) -> StepOutputs:
        """Run token ids (B, T) of a text model through its int8 embedding table."""
        return self.run(embed_tokens(self.model, ids))

    def _run(self, x_q: np.ndarray, states: list[np.ndarray], loop: str | None
             ) -> StepOutputs:
        if loop is not None and self.engine != "numba":
            raise ValueError("loop= chooses between the numba engine's loops")
        v, hs = x_q, []
        for layer, h0 in zip(self._layers, states, strict=True):
            v = layer.run(v, h0) if loop is None else layer.run(v, h0, loop=loop)
            hs.append(v)
        h = hs[0] if len(hs) == 1 else np.concatenate(hs, axis=2)
        return StepOutputs(h=h, y=None if self._head is None else self._head.apply(v))

    @property
    def batched_exact(self) -> bool:
        """Whether the numba engine's ``batched`` loop is exact for every layer."""
        return self.engine == "numba" and all(layer.blas_exact for layer in self._layers)

    # ---- streaming API -------------------------------------------------------------------
    def _zero_states(self, batch: int) -> list[np.ndarray]:
        return [np.zeros((batch, layer.units), self.model.state_dtype)
                for layer in self.model.layers]

    def reset(self, batch: int = 1) -> None:
        """Start ``batch`` new sequences from the zero state."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self._states = self._zero_states(batch)

    @property
    def state(self) -> np.ndarray:
        """The current int8 state of every layer, (B, ``state_bytes``) (a copy)."""
        return np.concatenate(self._states, axis=1)

    def step(self, x_q: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Advance every sequence by one int8 input ``x_q`` (B, D); returns the new whole
        state (B, ``state_bytes``) and ``y`` (B, O) or None."""
        x_q = self._check_inputs(np.asarray(x_q), ndim=2)
        batch = self._states[0].shape[0]
        if x_q.shape[0] != batch:
            raise ValueError(f"step got a batch of {x_q.shape[0]} after reset({batch})")
        out = self._run(x_q[:, None], self._states, None)
        self._states = [out.h[:, 0, s].copy() for s in self.model.state_slices]
        return out.h[:, 0].copy(), None if out.y is None else out.y[:, 0]

    def _check_inputs(self, x_q: np.ndarray, ndim: int) -> np.ndarray:
        if x_q.dtype != self.model.state_dtype:
            raise ValueError(f"inputs must be {np.dtype(self.model.state_dtype).name} "
                             f"(quantized with model.input_quant), got {x_q.dtype}")
        if x_q.ndim != ndim or x_q.shape[-1] != self.model.input_dim:
            want = "(B, T, D)" if ndim == 3 else "(B, D)"
            raise ValueError(f"inputs must have shape {want} with D = {self.model.input_dim}, "
                             f"got {x_q.shape}")
        return x_q


def embed_tokens(model: QuantizedModel, ids: np.ndarray) -> np.ndarray:
    """int8 embedding rows (B, T, D) of token ids (B, T) of a text model."""
    if model.embedding is None:
        raise ValueError("this model has no embedding table (not a text model)")
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer) or ids.ndim != 2:
        raise ValueError(f"token ids must be an integer array (B, T), got {ids.dtype} {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= model.vocab_size):
        raise ValueError(f"token ids must be in [0, {model.vocab_size}), "
                         f"got [{ids.min()}, {ids.max()}]")
    return model.embedding[ids]
