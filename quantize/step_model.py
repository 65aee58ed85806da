"""The one-step model ``(x_t, h_1 .. h_L) -> (h_1' .. h_L', y_t)`` and its int8 conversion.

One subgraph; for each layer ``l`` (``in_1 = x``, ``in_l = h_(l-1)'`` of the same
step)::

    a_l  = FC(in_l; W_x^l, b^l)      r_l = FC(h_l; W_h^l)  (no bias)
    z_l  = ADD(a_l, r_l)             h_l' = TANH(z_l)
    y    = FC(h_L'; W_y, b_y)        (logits, also for a softmax head)

which the TFLite converter emits as FULLY_CONNECTED · FULLY_CONNECTED · ADD ·
TANH per layer and a FULLY_CONNECTED head. It is converted with full integer
quantization (int8 inputs and outputs, per-channel int8 weights, int32 biases)
from a representative dataset of real ``(x_t, h_1(t-1) .. h_L(t-1))`` tuples.

Every state is pinned: TANH's int8 output is always (1/128, 0), and the
converter picks the same parameters for an ``h_l`` input when its calibration
states are clipped to ``[-1, 127/128]`` and one sample reaches both ends
(``(127/128 - (-1)) / 255 = 1/128``, zero point ``-128 - (-1)/(1/128) = 0``).
:func:`convert_step_model` adds those samples itself and checks the result.

The converter runs in a child process (``python -m elman.quantize.converter_child``):
TF's converter can crash the whole process (a SimpleRNN WHILE loop segfaults
it), and a crash must become a clear error, not a dead CLI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from elman.quantize.float_model import FloatElman
from elman.quantize.ir import STATE_SCALE, STATE_SCALE_16, TASKS
from elman.quantize.reader import read_ir

from elman.errors import ModelError

STATE_MIN = -1.0
STATE_MAX = 127.0 / 128.0
# int16 (16x8): symmetric int16 takes scale max|v| / 32767, so +-32767/32768 gives 1/32768,
# TANH's int16 output scale (measured: [-1, 32767/32768] gives 1/32767).
STATE_LIMIT_16 = 32767.0 / 32768.0
STATE_RANGES = {8: (STATE_MIN, STATE_MAX), 16: (-STATE_LIMIT_16, STATE_LIMIT_16)}
MAX_CALIBRATION_SAMPLES = 4000
CONVERTER_TIMEOUT_S = 600
# Test hook: the child kills itself with this signal (e.g. "SIGSEGV") before converting.
CRASH_ENV = "ELMAN_TEST_CONVERTER_SIGNAL"


def pinned_calibration(x: np.ndarray, states: Sequence[np.ndarray], state_bits: int = 8
                       ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Calibration tuples with every state clipped to [-1, 127/128] (int16 state:
    +-32767/32768) and both ends reached.

    Two copies of the first real tuple are appended, one with unit 0 of every state
    at the low end and one with it at the high end, so each observed state range is
    exactly the pinned one.
    """
    x = np.asarray(x, np.float32)
    low, high = STATE_RANGES[state_bits]
    out = []
    for h in states:
        h = np.clip(np.asarray(h, np.float32), low, high)
        lo, hi = h[:1].copy(), h[:1].copy()
        lo[0, 0], hi[0, 0] = low, high
        out.append(np.concatenate([h, lo, hi]))
    return np.concatenate([x, x[:1], x[:1]]), out


def job_arrays(model: FloatElman) -> dict[str, np.ndarray]:
    """The float weights as the converter child reads them (``layer{l}_kernel``, ...)."""
    arrays = {}
    for i, layer in enumerate(model.layers, start=1):
        arrays[f"layer{i}_kernel"] = layer.kernel
        arrays[f"layer{i}_recurrent_kernel"] = layer.recurrent_kernel
        arrays[f"layer{i}_bias"] = layer.bias
    if model.head_kernel is not None:
        arrays["head_kernel"] = model.head_kernel
        arrays["head_bias"] = model.head_bias
    return arrays


def convert_step_model(
    model: FloatElman,
    calibration_x: np.ndarray,
    calibration_h: Sequence[np.ndarray],
    *,
    task: str,
    labels: tuple[str, ...] | list[str] = (),
    norm_mean: np.ndarray | None = None,
    norm_std: np.ndarray | None = None,
    window_steps: int = 0,
    input_stride: int = 1,
    stride_mode: str = "sample",
    input_deltas: bool = False,
    clamp_preactivation: bool = True,
    state_bits: int = 8,
) -> bytes:
    """Convert the step model to int8 TFLite (in a child process) with elman metadata;
    ``state_bits=16``: 16x8 instead (int16 activations and state, int8 weights, int64
    biases), the state pinned to TANH's int16 output (1/32768, 0).

    ``calibration_x`` (N, input_dim) and ``calibration_h`` (one (N, units_l) per
    layer) are real ``(x_t, h_1(t-1) .. h_L(t-1))`` tuples; states are clipped and
    pinned here. A text model's float embedding table (``model.embedding``) is
    quantized with the converted model's ``x`` parameters and stored in the file;
    the head's placement and activation (``model.head_steps``,
    ``model.head_activation``) and ``window_steps`` (a classifier's trained window,
    0 when it streams) and ``input_stride`` / ``stride_mode`` / ``input_deltas`` (how the
    steps are made of the recording's samples) go into the metadata. Returns the
    ``.tflite`` bytes, already checked by :func:`~elman.quantize.reader.read_ir` (pinned
    states included).
    ``clamp_preactivation=False`` keeps the plain min/max range of each ADD's
    output instead of clamping it where TANH saturates (for measurements; the
    default is better).
    """
    if task not in TASKS:
        raise ModelError(f"task must be one of {TASKS}, got {task!r}")
    if state_bits not in STATE_RANGES:
        raise ModelError(f"the state has 8 or 16 bits, got {state_bits}")
    cx = np.asarray(calibration_x, np.float32)
    states = [np.asarray(h, np.float32) for h in calibration_h]
    if cx.ndim != 2 or cx.shape[1] != model.input_dim or len(cx) == 0:
        raise ModelError(f"calibration inputs must be (N, {model.input_dim}), got {cx.shape}")
    if len(states) != model.depth:
        raise ModelError(f"calibration needs one state array per layer ({model.depth}), "
                         f"got {len(states)}")
    for i, (h, units) in enumerate(zip(states, model.units, strict=True), start=1):
        if h.shape != (len(cx), units):
            raise ModelError(f"calibration states of layer {i} must be ({len(cx)}, {units}), "
                             f"got {h.shape}")
    if not (np.all(np.isfinite(cx)) and all(np.all(np.isfinite(h)) for h in states)):
        raise ModelError("the calibration data contain NaN or infinity")
    if len(cx) > MAX_CALIBRATION_SAMPLES:
        pick = np.random.default_rng(0).choice(len(cx), MAX_CALIBRATION_SAMPLES, replace=False)
        pick.sort()
        cx, states = cx[pick], [h[pick] for h in states]
    cx, states = pinned_calibration(cx, states, state_bits)

    with tempfile.TemporaryDirectory(prefix="elman-convert-") as tmp:
        job = Path(tmp)
        arrays = {**job_arrays(model), "calibration_x": cx,
                  **{f"calibration_h{i}": h for i, h in enumerate(states, start=1)}}
        for name, v in (("norm_mean", norm_mean), ("norm_std", norm_std),
                        ("embedding", model.embedding)):
            if v is not None:
                arrays[name] = np.asarray(v, np.float32)
        np.savez(job / "job.npz", **arrays)
        (job / "job.json").write_text(json.dumps({
            "task": task, "labels": list(labels), "layers": model.depth,
            "clamp_preactivation": clamp_preactivation, "head_steps": model.head_steps,
            "head_activation": model.head_activation, "window_steps": int(window_steps),
            "input_stride": int(input_stride), "stride_mode": stride_mode,
            "input_deltas": bool(input_deltas),
            "state_bits": state_bits}))
        converted = _run_child(job)
    check_pinned_states(converted, state_bits)
    return converted


def check_pinned_states(model: bytes, state_bits: int = 8) -> None:
    """Read ``model`` back (validating it) and require every state at (1/128, 0) (int16
    state: (1/32768, 0), in ``state_bits``-bit tensors)."""
    ir = read_ir(model)  # validates the graph, dtypes, per-channel weights and metadata
    scale, text = (STATE_SCALE, "(1/128, 0)") if state_bits == 8 else \
        (STATE_SCALE_16, "(1/32768, 0) in int16")
    if any(layer.recurrent_fc.input.scale != scale or layer.tanh.output.scale != scale
           or layer.recurrent_fc.input.zero_point != 0 or layer.tanh.output.zero_point != 0
           or layer.state_bits != state_bits for layer in ir.layers):
        raise ModelError(f"the converter did not pin the state quantization to {text}")


def _run_child(job: Path) -> bytes:
    cmd = [sys.executable, "-m", "elman.quantize.converter_child", str(job)]
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              timeout=CONVERTER_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise ModelError(f"the TFLite converter did not finish in {CONVERTER_TIMEOUT_S} s"
                         ) from None
    if proc.returncode < 0:
        try:
            sig = signal.Signals(-proc.returncode).name
        except ValueError:
            sig = f"signal {-proc.returncode}"
        raise ModelError(
            f"the TFLite converter crashed ({sig}) while converting the step model; "
            f"the converter's last words: {_tail(proc.stderr)}"
        )
    error_file = job / "error.txt"
    if proc.returncode != 0 or not (job / "model.tflite").exists():
        detail = error_file.read_text() if error_file.exists() else _tail(proc.stderr)
        raise ModelError(f"the TFLite converter failed (exit status {proc.returncode}): "
                         f"{detail.strip()}")
    return (job / "model.tflite").read_bytes()


def _tail(text: str, lines: int = 5) -> str:
    kept = [ln for ln in text.strip().splitlines() if ln.strip()][-lines:]
    return " | ".join(kept) if kept else "(nothing on stderr)"
