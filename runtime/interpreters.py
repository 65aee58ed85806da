"""Run a step model in the real interpreters, one invoke per time step.

``run_litert`` uses LiteRT's reference kernels (``BUILTIN_REF``, what profile
``tflite`` reproduces); ``run_tflm`` the TFLite Micro interpreter from the
``tflite-micro`` package (profile ``tflm``). Both feed each step's int8 ``h_l'``
outputs back as the next step's ``h_l`` inputs (every layer's), starting from
zeros, in the tensor positions of the IR's ``StepSignature``. Neither needs
TensorFlow.

An interpreter that refuses or fails on the model (LiteRT's ``ValueError: The
model is not a valid Flatbuffer buffer``, TFLite Micro's ``struct.error`` or
``RuntimeError``, ...) raises one :class:`~elman.errors.ModelError` naming the
interpreter and its first line of complaint; :func:`check_model_loads` does
that for every interpreter before a stage starts real work.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from elman.quantize.ir import QuantizedModel
from elman.runtime.outputs import StepOutputs
from elman.runtime.simulator import embed_tokens

from elman.errors import ModelError, ToolchainError

ModelSource = Path | str | bytes


def _model_bytes(model: ModelSource) -> bytes:
    if isinstance(model, bytes | bytearray):
        return bytes(model)
    try:
        return Path(model).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read the model {model}: {exc.strerror or exc}") from None


def interpreter_error(interpreter: str, doing: str, exc: BaseException) -> ModelError:
    """One line for an interpreter's exception (their messages run to many lines)."""
    lines = [s.strip() for s in str(exc).splitlines() if s.strip()]
    detail = lines[0] if lines else type(exc).__name__
    return ModelError(f"{interpreter} {doing}: {type(exc).__name__}: {detail}")


def _check_x(ir: QuantizedModel, x_q: np.ndarray) -> np.ndarray:
    x_q = np.asarray(x_q)
    if x_q.dtype != ir.state_dtype or x_q.ndim != 3 or x_q.shape[2] != ir.input_dim:
        raise ValueError(f"x_q must be {np.dtype(ir.state_dtype).name} (B, T, {ir.input_dim}), "
                         f"got {x_q.dtype} {x_q.shape}")
    return x_q


Step = Callable[[np.ndarray, list[np.ndarray]], tuple[list[np.ndarray], np.ndarray | None]]


def _zero_states(ir: QuantizedModel) -> list[np.ndarray]:
    return [np.zeros((1, units), dtype=ir.state_dtype) for units in ir.layer_units]


def _loop(ir: QuantizedModel, x_q: np.ndarray, invoke: Step,
          progress: Callable[[int], None] | None = None,
          lengths: np.ndarray | None = None) -> StepOutputs:
    """Drive ``invoke(x (1, D), [h_l (1, H_l)]) -> ([h_l'], y)`` over every step of every
    sequence; with ``lengths`` (B,), over sequence b's first ``lengths[b]`` steps only (the
    outputs of the padding after them are zeros: no step before them depends on it)."""
    x_q = _check_x(ir, x_q)
    batch, steps, _ = x_q.shape
    hs = np.zeros((batch, steps, ir.state_bytes), dtype=ir.state_dtype)
    ys = None if ir.head is None else np.zeros((batch, steps, ir.output_dim), dtype=ir.state_dtype)
    for b in range(batch):
        h = _zero_states(ir)
        for t in range(steps if lengths is None else min(int(lengths[b]), steps)):
            h, y = invoke(x_q[b, t][None, :], h)
            hs[b, t] = np.concatenate(h, axis=1)[0]
            if ys is not None:
                ys[b, t] = y[0]
        if progress is not None:
            progress(steps)
    return StepOutputs(h=hs, y=ys)


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C++ interpreters' banner lines (XNNPACK etc.) on file descriptor 2."""
    try:
        fd = os.dup(2)
    except OSError:  # pragma: no cover - no stderr
        yield
        return
    try:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(io.StringIO()):
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)


def litert_step(model: ModelSource, ir: QuantizedModel) -> Step:
    """A ``step(x, [h_l]) -> ([h_l'], y)`` function on a LiteRT ``BUILTIN_REF`` interpreter."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as exc:  # pragma: no cover - dependency of elman
        raise ToolchainError(
            f"LiteRT is not installed (pip install ai-edge-litert): {exc}") from exc
    data = _model_bytes(model)
    try:
        with _quiet_stderr():
            interp = Interpreter(model_content=data,
                                 experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
            interp.allocate_tensors()
        ins, outs = interp.get_input_details(), interp.get_output_details()
        sig = ir.signature
        x_idx = ins[sig.x_input]["index"]
        h_in = [ins[i]["index"] for i in sig.h_inputs]
        h_out = [outs[i]["index"] for i in sig.h_outputs]
        y_out = None if sig.y_output is None else outs[sig.y_output]["index"]
    except (ValueError, RuntimeError, IndexError, KeyError) as exc:
        raise interpreter_error("LiteRT", "cannot load the model", exc) from None

    def step(x: np.ndarray, h: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray | None]:
        try:
            interp.set_tensor(x_idx, x)
            for index, value in zip(h_in, h, strict=True):
                interp.set_tensor(index, value)
            interp.invoke()
        except (ValueError, RuntimeError) as exc:
            raise interpreter_error("LiteRT", "failed to run the model", exc) from None
        y = None if y_out is None else interp.get_tensor(y_out)
        return [interp.get_tensor(index) for index in h_out], y

    return step


def tflm_step(model: ModelSource, ir: QuantizedModel) -> Step:
    """A ``step(x, [h_l]) -> ([h_l'], y)`` function on the TFLite Micro Python interpreter."""
    try:
        from tflite_micro.python.tflite_micro import runtime as tflm_runtime
    except ImportError as exc:  # pragma: no cover - dependency of elman
        raise ToolchainError(f"tflite-micro is not installed (pip install tflite-micro): {exc}"
                             ) from exc
    data = _model_bytes(model)
    try:
        # its Python wrapper parses the flatbuffer itself first: struct.error, IndexError,
        # UnicodeDecodeError... on damaged bytes, RuntimeError from the C++ side
        interp = tflm_runtime.Interpreter.from_bytes(
            data, arena_size=max(64 * 1024, 16 * len(data)))
    except Exception as exc:  # noqa: BLE001 - any failure to load is the model's
        raise interpreter_error("the TFLite Micro interpreter", "cannot load the model", exc
                                ) from None
    sig = ir.signature

    def step(x: np.ndarray, h: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray | None]:
        try:
            interp.set_input(x, sig.x_input)
            for index, value in zip(sig.h_inputs, h, strict=True):
                interp.set_input(value, index)
            interp.invoke()
        except (ValueError, RuntimeError) as exc:
            raise interpreter_error("the TFLite Micro interpreter", "failed to run the model",
                                    exc) from None
        y = None if sig.y_output is None else interp.get_output(sig.y_output)
        return [interp.get_output(index) for index in sig.h_outputs], y

    return step


def check_model_loads(model: ModelSource, ir: QuantizedModel,
                      profiles: tuple[str, ...] = ("tflite", "tflm")) -> None:
    """Load the model in the interpreter of each profile (LiteRT for ``tflite``, TFLite
    Micro for ``tflm``) and run one step: a model either refuses is one ModelError here,
    before a stage generates or computes anything."""
    x = np.zeros((1, ir.input_dim), ir.state_dtype)
    h = _zero_states(ir)
    for profile, make in (("tflite", litert_step), ("tflm", tflm_step)):
        if profile in profiles:
            make(model, ir)(x, h)


def run_litert(model: ModelSource, ir: QuantizedModel, x_q: np.ndarray,
               progress: Callable[[int], None] | None = None,
               lengths: np.ndarray | None = None) -> StepOutputs:
    """LiteRT reference kernels over int8 inputs (B, T, D), one invoke per step (with
    ``lengths``: the real steps only, zeros after them)."""
    return _loop(ir, x_q, litert_step(model, ir), progress, lengths)


def run_tflm(model: ModelSource, ir: QuantizedModel, x_q: np.ndarray,
             progress: Callable[[int], None] | None = None,
             lengths: np.ndarray | None = None) -> StepOutputs:
    """TFLite Micro over int8 inputs (B, T, D), one invoke per step (with ``lengths``: the
    real steps only, zeros after them)."""
    return _loop(ir, x_q, tflm_step(model, ir), progress, lengths)


def run_litert_tokens(model: ModelSource, ir: QuantizedModel, ids: np.ndarray,
                      progress: Callable[[int], None] | None = None) -> StepOutputs:
    """``run_litert`` from token ids (B, T) through the IR's int8 embedding table."""
    return run_litert(model, ir, embed_tokens(ir, ids), progress)


def run_tflm_tokens(model: ModelSource, ir: QuantizedModel, ids: np.ndarray,
                    progress: Callable[[int], None] | None = None) -> StepOutputs:
    """``run_tflm`` from token ids (B, T) through the IR's int8 embedding table."""
    return run_tflm(model, ir, embed_tokens(ir, ids), progress)
