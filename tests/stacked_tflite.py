"""Stacked (1 to 3 layer) int8 step models converted by the real TF converter, for tests.

Until the quantize stage converts stacked Keras models, the tests build their own:
random float weights, an L-layer step graph (``x, h_1 .. h_L -> h_1' .. h_L', y``,
layer ``l`` reading layer ``l - 1``'s new state, as agreed for elman's step
models), calibrated on the float model's own states along random sequences with
every state clipped to [-1, 127/128] and both ends reached (which pins each state
input to (1/128, 0)), converted with full int8 quantization in a child process,
and given elman's metadata and checksum. Cached like ``random_step_tflite`` (per process, and
across processes in ``ELMAN_RANDOM_STEP_CACHE``).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CACHE_ENV = "ELMAN_RANDOM_STEP_CACHE"

CHILD = r'''
import json, sys
import numpy as np
import tensorflow as tf
from elman.quantize.integrity import seal
from elman.quantize.metadata import StepMetadata, add_metadata

job = json.load(open(sys.argv[1]))
rng = np.random.default_rng(job["seed"])
d, units, out_dim, scale = job["input_dim"], job["layer_units"], job["output_dim"], job["scale"]

def normal(*shape, fan_in):
    return (rng.standard_normal(shape) * scale / np.sqrt(fan_in)).astype(np.float32)

layers, below = [], d
for n in units:
    layers.append((normal(below, n, fan_in=below), normal(n, n, fan_in=n),
                   (rng.standard_normal(n) * 0.1 * scale).astype(np.float32)))
    below = n
head = (normal(below, out_dim, fan_in=below),
        (rng.standard_normal(out_dim) * 0.1).astype(np.float32)) if out_dim else None

def float_step(x, hs):
    v, new = x, []
    for (wx, wh, b), h in zip(layers, hs):
        v = np.tanh(v @ wx + b + h @ wh).astype(np.float32)
        new.append(v)
    return new

# calibration pairs from the float model's own states along random sequences
n_seq, steps = 8, 24
xs = rng.uniform(-job["x_range"], job["x_range"], (n_seq, steps, d)).astype(np.float32)
cal = []
hs = [np.zeros((n_seq, n), np.float32) for n in units]
for t in range(steps):
    cal.append((xs[:, t], [np.clip(h, -1.0, 127 / 128) for h in hs]))
    hs = float_step(xs[:, t], hs)
samples = [(x[i:i + 1], [h[i:i + 1] for h in hl]) for x, hl in cal for i in range(n_seq)]
x0, h0 = samples[0]
for lo_hi in (-1.0, 127 / 128):  # every state input reaches both ends of (1/128, 0)
    samples.append((x0, [np.concatenate([[lo_hi], h[0, 1:]])[None].astype(np.float32)
                         for h in h0]))

specs = [tf.TensorSpec([1, d], tf.float32, name="x")] + [
    tf.TensorSpec([1, n], tf.float32, name=f"h{i + 1}") for i, n in enumerate(units)]

class Step(tf.Module):
    @tf.function(input_signature=specs)
    def step(self, x, *hs):
        v, out = x, {}
        for i, ((wx, wh, b), h) in enumerate(zip(layers, hs)):
            v = tf.tanh(tf.matmul(v, wx) + b + tf.matmul(h, wh))
            out[f"h{i + 1}_next"] = v
        if head is not None:
            out["y"] = tf.matmul(v, head[0]) + head[1]
        return out

m = Step()
def representative():
    for x, hl in samples:
        yield {"x": x, **{f"h{i + 1}": h for i, h in enumerate(hl)}}

conv = tf.lite.TFLiteConverter.from_concrete_functions([m.step.get_concrete_function()], m)
conv.optimizations = [tf.lite.Optimize.DEFAULT]
conv.representative_dataset = representative
conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
conv.inference_input_type = tf.int8
conv.inference_output_type = tf.int8
model = bytes(conv.convert())
meta = StepMetadata(task="classification", labels=tuple(f"class{i}" for i in range(out_dim)),
                    norm_mean=np.zeros(d, np.float32), norm_std=np.ones(d, np.float32),
                    head_steps=job["head_steps"], window_steps=job["window_steps"])
open(sys.argv[2], "wb").write(seal(add_metadata(model, meta.to_entries())))
'''


def stacked_step_tflite(input_dim: int, layer_units: tuple[int, ...], output_dim: int, *,
                        seed: int = 0, head_steps: str = "last", window_steps: int = 0,
                        x_range: float = 1.0, scale: float = 1.0) -> bytes:
    """A converted int8 step model of ``len(layer_units)`` stacked Elman layers."""
    job = {"format": 2, "input_dim": int(input_dim), "layer_units": [int(u) for u in layer_units],
           "output_dim": int(output_dim), "seed": int(seed), "head_steps": head_steps,
           "window_steps": int(window_steps), "x_range": float(x_range), "scale": float(scale)}
    key = json.dumps(job, sort_keys=True)
    cache_dir = os.environ.get(CACHE_ENV)
    if not cache_dir:
        return _convert(key)
    root = Path(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = root / ("stacked-" + hashlib.sha256(key.encode()).hexdigest()[:32] + ".tflite")
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not path.exists():
                tmp = path.with_suffix(".partial")
                tmp.write_bytes(_convert(key))
                os.replace(tmp, path)
            return path.read_bytes()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@functools.lru_cache(maxsize=16)
def _convert(key: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="elman-stacked-") as tmp:
        job, out = Path(tmp) / "job.json", Path(tmp) / "model.tflite"
        job.write_text(key)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.run([sys.executable, "-c", CHILD, str(job), str(out)],
                              capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"converting the stacked test model failed:\n{proc.stderr[-3000:]}")
        return out.read_bytes()
