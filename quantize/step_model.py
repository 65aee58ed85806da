"""The one-step cell model ``(x_t, h_(t-1)) -> (h_t, y_t)`` and its int8 conversion.

The graph is ``h_t = tanh(x W_x + b + h W_h)``, ``y_t = h_t W_y + b_y``, which
the TFLite converter turns into FULLY_CONNECTED(x, bias) · FULLY_CONNECTED(h,
no bias) · ADD · TANH · FULLY_CONNECTED(head). It is converted with full
integer quantization (int8 inputs and outputs, per-channel int8 weights, int32
biases) from a representative dataset of real ``(x_t, h_(t-1))`` pairs.

The state quantization is pinned: TANH's int8 output is always (1/128, 0), and
the converter picks the same parameters for the ``h`` input when the
calibration states are clipped to ``[-1, 127/128]`` and one sample reaches both
ends (``(127/128 - (-1)) / 255 = 1/128``, zero point ``-128 - (-1)/(1/128) = 0``).
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from elman.quantize.ir import STATE_SCALE, TASKS
from elman.quantize.reader import read_ir

from elman.errors import ModelError

STATE_MIN = -1.0
STATE_MAX = 127.0 / 128.0
MAX_CALIBRATION_SAMPLES = 4000
CONVERTER_TIMEOUT_S = 600
# Test hook: the child kills itself with this signal (e.g. "SIGSEGV") before converting.
CRASH_ENV = "ELMAN_TEST_CONVERTER_SIGNAL"


@dataclass(frozen=True, eq=False)
class StepWeights:
    """Float weights of an Elman cell in Keras layout (``x @ kernel``)."""

    kernel: np.ndarray  # (input_dim, units)
    recurrent_kernel: np.ndarray  # (units, units)
    bias: np.ndarray  # (units,)
    head_kernel: np.ndarray | None = None  # (units, outputs)
    head_bias: np.ndarray | None = None  # (outputs,)

    def __post_init__(self) -> None:
        for name in ("kernel", "recurrent_kernel", "bias", "head_kernel", "head_bias"):
            v = getattr(self, name)
            if v is not None:
                v = np.asarray(v, dtype=np.float32)
                if not np.all(np.isfinite(v)):
                    raise ModelError(f"the {name} weights contain NaN or infinity")
                object.__setattr__(self, name, v)
        d, h = self.kernel.shape
        problems = []
        if self.recurrent_kernel.shape != (h, h):
            problems.append(f"recurrent kernel {self.recurrent_kernel.shape} != ({h}, {h})")
        if self.bias.shape != (h,):
            problems.append(f"bias {self.bias.shape} != ({h},)")
        if (self.head_kernel is None) != (self.head_bias is None):
            problems.append("head kernel and head bias must be given together")
        elif self.head_kernel is not None:
            if self.head_kernel.ndim != 2 or self.head_kernel.shape[0] != h:
                problems.append(f"head kernel {self.head_kernel.shape} does not read {h} units")
            elif self.head_bias.shape != (self.head_kernel.shape[1],):
                problems.append(f"head bias {self.head_bias.shape} does not match the kernel")
        if problems:
            raise ModelError("inconsistent step weights: " + "; ".join(problems))

    @property
    def input_dim(self) -> int:
        return int(self.kernel.shape[0])

    @property
    def units(self) -> int:
        return int(self.kernel.shape[1])

    @property
    def output_dim(self) -> int:
        return 0 if self.head_kernel is None else int(self.head_kernel.shape[1])

    def step(self, x: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """One float step (float32, batched): ``(h_t, y_t)``."""
        h_new = np.tanh(x @ self.kernel + self.bias + h @ self.recurrent_kernel)
        y = None if self.head_kernel is None else h_new @ self.head_kernel + self.head_bias
        return h_new.astype(np.float32), y


def pinned_calibration(x: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Calibration pairs with the state clipped to [-1, 127/128] and both ends reached.

    Two copies of the first real pair are appended, one with unit 0 at -1 and one
    with unit 0 at 127/128, so the observed state range is exactly [-1, 127/128].
    """
    x = np.asarray(x, np.float32)
    h = np.clip(np.asarray(h, np.float32), STATE_MIN, STATE_MAX)
    lo, hi = h[:1].copy(), h[:1].copy()
    lo[0, 0], hi[0, 0] = STATE_MIN, STATE_MAX
    return np.concatenate([x, x[:1], x[:1]]), np.concatenate([h, lo, hi])


def convert_step_model(
    weights: StepWeights,
    calibration_x: np.ndarray,
    calibration_h: np.ndarray,
    *,
    task: str,
    labels: tuple[str, ...] | list[str] = (),
    norm_mean: np.ndarray | None = None,
    norm_std: np.ndarray | None = None,
    embedding: np.ndarray | None = None,
    clamp_preactivation: bool = True,
) -> bytes:
    """Convert the step model to int8 TFLite (in a child process) with elman metadata.

    ``calibration_x`` (N, input_dim) and ``calibration_h`` (N, units) are real
    ``(x_t, h_(t-1))`` pairs; states are clipped and pinned here. ``embedding``
    is the float (vocab, input_dim) table of a text model: it is quantized with
    the converted model's ``x`` parameters and stored in the file. Returns the
    ``.tflite`` bytes, already checked by :func:`~elman.quantize.reader.read_ir`
    (pinned state included). ``clamp_preactivation=False`` keeps the plain min/max
    range of ADD's output instead of clamping it where TANH saturates (for
    measurements; the default is better).
    """
    if task not in TASKS:
        raise ModelError(f"task must be one of {TASKS}, got {task!r}")
    cx = np.asarray(calibration_x, np.float32)
    ch = np.asarray(calibration_h, np.float32)
    if cx.ndim != 2 or cx.shape[1] != weights.input_dim or len(cx) == 0:
        raise ModelError(f"calibration inputs must be (N, {weights.input_dim}), got {cx.shape}")
    if ch.shape != (len(cx), weights.units):
        raise ModelError(f"calibration states must be ({len(cx)}, {weights.units}), got {ch.shape}")
    if not (np.all(np.isfinite(cx)) and np.all(np.isfinite(ch))):
        raise ModelError("the calibration data contain NaN or infinity")
    if len(cx) > MAX_CALIBRATION_SAMPLES:
        pick = np.random.default_rng(0).choice(len(cx), MAX_CALIBRATION_SAMPLES, replace=False)
        pick.sort()
        cx, ch = cx[pick], ch[pick]
    cx, ch = pinned_calibration(cx, ch)

    with tempfile.TemporaryDirectory(prefix="elman-convert-") as tmp:
        job = Path(tmp)
        arrays = {
            "kernel": weights.kernel, "recurrent_kernel": weights.recurrent_kernel,
            "bias": weights.bias, "calibration_x": cx, "calibration_h": ch,
        }
        if weights.head_kernel is not None:
            arrays["head_kernel"] = weights.head_kernel
            arrays["head_bias"] = weights.head_bias
        for name, v in (("norm_mean", norm_mean), ("norm_std", norm_std),
                        ("embedding", embedding)):
            if v is not None:
                arrays[name] = np.asarray(v, np.float32)
        np.savez(job / "job.npz", **arrays)
        (job / "job.json").write_text(json.dumps({"task": task, "labels": list(labels),
                                                  "clamp_preactivation": clamp_preactivation}))
        model = _run_child(job)
    ir = read_ir(model)  # validates the graph, dtypes, per-channel weights and metadata
    if ir.state_quant.scale != STATE_SCALE or ir.state_quant.zero_point != 0 \
            or ir.tanh.output.scale != STATE_SCALE or ir.tanh.output.zero_point != 0:
        raise ModelError("the converter did not pin the state quantization to (1/128, 0)")
    return model


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
