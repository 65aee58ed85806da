"""NNoM on the run's float model: its converter, its C library, elman's emulator.

NNoM's own script (``scripts/nnom.py: generate_model``, in its TensorFlow 2.14
environment) quantizes the float network to q7 with power-of-two scales,
calibrated on the run's training split, and writes ``weights.h``. The C library
(``src/``, the local backend, no CMSIS-NN) is built with a port header for bare
metal: NNoM's static memory allocator on one buffer (counted at the smallest size
that still gives the same outputs, by bisection) and no logging. NNoM runs a whole
sequence per ``model_run`` (the SimpleRNN steps over all T samples, then the dense
head once), so instructions per step are a sequence's instructions divided by T.
The outputs, dequantized with NNoM's output format, are compared with the Keras
float model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from elman.firmware_codegen.arm.machine import Machine
from elman.firmware_codegen.arm.toolchain import CPU_FLAGS
from image import (
    PeerBuildError,
    classify_runtime,
    compile_c,
    link,
    repaint_stack,
    run_converter,
    size_split,
    size_summary,
    smallest_buffer,
)

BUFFER_MAX = 128 * 1024
PORT_HEADER = """\
/* NNoM port for a bare-metal build in elman's emulator harness (peers bench). */
#ifndef __NNOM_PORT_H__
#define __NNOM_PORT_H__
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#define NNOM_USING_STATIC_MEMORY  /* one buffer, set by nnom_set_static_buf() */
#define nnom_memset(p, v, s) memset(p, v, s)
#define nnom_memcpy(dst, src, len) memcpy(dst, src, len)
#define nnom_us_get() 0
#define nnom_ms_get() 0
#define NNOM_LOG(...)             /* no logging: no printf in the image */
#define NNOM_BLOCK_NUM (8)
#define DENSE_WEIGHT_OPT (1)
#endif
"""
MODEL_C = """\
/* The model NNoM's converter wrote, and access to its I/O buffers. */
#include "nnom.h"
#include "weights.h"
nnom_model_t *peer_model_create(void) { return nnom_model_create(); }
int8_t *peer_input(void) { return nnom_input_data; }
int8_t *peer_output(void) { return nnom_output_data; }
"""
APP_C = """\
/* What an application writes to run the NNoM model once per sequence. */
#include <string.h>
#include "nnom.h"
nnom_model_t *peer_model_create(void);
int8_t *peer_input(void);
int8_t *peer_output(void);
static nnom_model_t *model;
int peer_setup(uint8_t *buffer, uint32_t size) {
  nnom_set_static_buf(buffer, size);
  model = peer_model_create();
  return model == NULL;
}
int peer_run(const int8_t *x, int8_t *y) {
  memcpy(peer_input(), x, %(in_bytes)d);
  if (model_run(model) != NN_SUCCESS) return 1;
  memcpy(y, peer_output(), %(out_bytes)d);
  return 0;
}
"""
HARNESS_C = """\
/* The emulator's buffers (not counted). */
#include <stdint.h>
uint8_t armharness_buffer[%(buffer)d] __attribute__((aligned(16)));
int8_t armharness_x[%(in_bytes)d] __attribute__((aligned(8)));
int8_t armharness_y[%(out_bytes)d] __attribute__((aligned(8)));
"""


def convert(model, nnom_dir: Path, python: Path, out: Path, log=print) -> dict[str, Any]:
    """Run NNoM's converter (in its environment) once per model; returns its formats."""
    weights_h = out / "weights.h"
    info_path = out / "convert.json"
    if weights_h.exists() and info_path.exists():
        return json.loads(info_path.read_text())
    out.mkdir(parents=True, exist_ok=True)
    npz = out / "model.npz"
    np.savez(npz, **model.weights, x_calibration=model.x_calibration,
             x_check=model.x, y_check=model.keras_y)
    log(f"  NNoM: converting with {python} (TensorFlow 2.14) ...")
    info = run_converter(python, Path(__file__).with_name("nnom_child.py"),
                         [str(nnom_dir), str(npz), str(out)], "NNoM's converter")
    if not weights_h.exists():
        raise PeerBuildError(f"NNoM's converter wrote no {weights_h}")
    text = weights_h.read_text()
    info["input_dec"] = _define(text, "INPUT_OUTPUT_DEC")
    info["output_dec"] = _define(text, "DENSE_OUTPUT_DEC")
    if info["rebuilt_max_abs_diff"] > 1e-4:
        raise PeerBuildError(f"the network rebuilt in TensorFlow 2.14 differs from the run's "
                             f"Keras model by {info['rebuilt_max_abs_diff']:g}")
    info_path.write_text(json.dumps(info, indent=1))
    return info


def _define(text: str, name: str) -> int:
    m = re.search(rf"#define {name} \(?(-?\d+)\)?", text)
    if m is None:
        raise PeerBuildError(f"NNoM's weights.h defines no {name}")
    return int(m.group(1))


def quantize_input(x: np.ndarray, dec: int) -> np.ndarray:
    """NNoM's q7 input: x * 2**dec, rounded half away from zero, saturated."""
    v = x.astype(np.float64) * (1 << dec) if dec >= 0 else x / (1 << -dec)
    return np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5), -128, 127).astype(np.int8)


def build(model, nnom_dir: Path, convert_dir: Path, cpu: str, opt: str, out: Path):
    out.mkdir(parents=True, exist_ok=True)
    port = out / "port"
    port.mkdir(exist_ok=True)
    (port / "nnom_port.h").write_text(PORT_HEADER)
    in_bytes = int(np.prod(model.x.shape[1:]))
    out_bytes = int(model.weights["wy"].shape[1])
    sizes = {"in_bytes": in_bytes, "out_bytes": out_bytes, "buffer": BUFFER_MAX}
    (out / "model.c").write_text(MODEL_C)
    (out / "nnom_app.c").write_text(APP_C % sizes)
    (out / "armharness.c").write_text(HARNESS_C % sizes)
    cpu_flags = list(CPU_FLAGS[cpu])
    flags = [*cpu_flags, f"-{opt}", "-std=gnu99", "-ffunction-sections", "-fdata-sections",
             f"-I{port}", f"-I{convert_dir}", f"-I{nnom_dir / 'inc'}",
             f"-I{nnom_dir / 'inc' / 'layers'}"]
    library = sorted((nnom_dir / "src").rglob("*.c"))
    objs = compile_c("arm-none-eabi-gcc", flags, [*library, out / "model.c",
                                                  out / "nnom_app.c", out / "armharness.c"], out)
    image = link(["arm-none-eabi-gcc", *cpu_flags], objs, out, cpu=cpu, opt=opt,
                 entry_points=("peer_setup", "peer_run"))
    return image, in_bytes, out_bytes


def classify(src: str) -> str:
    runtime = classify_runtime(src)
    if runtime:
        return runtime
    name = Path(src).name
    if name == "model.o":
        return "model (weights.h)"
    if name == "nnom_app.o":
        return "application"
    return "NNoM library"


def _run(image, size: int, xq: np.ndarray, out_bytes: int):
    m = Machine(image)
    buf, xa, ya = (m.address(f"armharness_{n}") for n in ("buffer", "x", "y"))
    setup = m.call("peer_setup", buf, size)
    if setup.r0 != 0:
        return None
    setup_stack = m.stack_high_water()
    repaint_stack(m)
    ys, counts = [], []
    for seq in xq:
        m.write(xa, seq.tobytes())
        res = m.call("peer_run", xa, ya)
        if res.r0 != 0:
            return None
        ys.append(np.frombuffer(m.read(ya, out_bytes), np.int8).copy())
        counts.append(res.instructions)
    return {"y": np.array(ys), "instructions": counts, "setup_stack": setup_stack,
            "step_stack": m.stack_high_water(), "setup_instructions": setup.instructions}


def measure(model, nnom_dir: Path, python: Path, cpu: str, opt: str, work: Path,
            log=print) -> dict[str, Any]:
    convert_dir = work / "convert"
    info = convert(model, nnom_dir, python, convert_dir, log)
    image, _in_bytes, out_bytes = build(model, nnom_dir, convert_dir, cpu, opt,
                                        work / f"{cpu}_{opt}")
    xq = quantize_input(model.x, info["input_dec"])
    full = _run(image, BUFFER_MAX, xq[:1], out_bytes)
    if full is None:
        raise PeerBuildError(f"NNoM does not run with a {BUFFER_MAX}-byte buffer")

    def works(n: int) -> bool:
        try:
            r = _run(image, n, xq[:1], out_bytes)
        except Exception:  # a model built in too little memory may fault: not enough
            return False
        return r is not None and np.array_equal(r["y"], full["y"])

    buffer = smallest_buffer(works, BUFFER_MAX)
    run = _run(image, buffer, xq, out_bytes)
    if run is None:
        raise PeerBuildError(f"NNoM failed with its smallest buffer ({buffer} bytes)")
    sizes = size_summary(size_split(image.elf.with_suffix(".map"), image.elf, classify))
    stack = max(run["setup_stack"], run["step_stack"])
    steps = model.steps
    y = run["y"].astype(np.float64) / (2.0 ** info["output_dec"])
    return {
        **sizes, "ram": buffer + sizes["static"] + stack,
        "ram_split": {"buffer": buffer, "static": sizes["static"], "stack": stack},
        "stack_setup": run["setup_stack"], "stack_step": run["step_stack"],
        "instructions_per_step": float(np.mean(run["instructions"])) / steps,
        "instructions_per_sequence": float(np.mean(run["instructions"])),
        "setup_instructions": run["setup_instructions"],
        "y_dequantized": y, "formats": info,
    }
