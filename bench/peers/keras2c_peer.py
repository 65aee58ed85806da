"""keras2c on the run's float model: its converter, its C runtime, elman's emulator.

keras2c 2.0 (PyPI, in its own environment) writes C for two rebuilds of the float
network (``keras2c_child.py``); its C runtime (``include/*.c``) comes only from its
repository (``--keras2c DIR``). Float code, so the Cortex-M4 build uses its FPU
(``-mfloat-abi=hard -mfpu=fpv4-sp-d16``; "M4F") and the Cortex-M0+ build soft float.
Two programs:

- ``sequence``: ``peer_seq(x[T][D]) -> y`` once per sequence (head on the last step);
  instructions per step are a sequence's divided by T;
- ``stateful step``: ``peer_step(x[D]) -> y`` once per sample (head on every step),
  the state kept inside keras2c between calls and cleared per sequence.

keras2c (``malloc=False``) declares every weight array inside the model function, so
each call copies all weights from flash onto the stack: the stack is measured, and
the emulator gets a stack large enough for it. Outputs are compared with the Keras
float model.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from elman.firmware_codegen.arm import machine
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
)

STACK_BYTES = 256 * 1024
# soft float on the Cortex-M0+ costs ~1 M instructions per step at 64 units, ~4 M at 128:
# a whole sequence per call is more than the emulator's default limit of one call
MAX_INSTRUCTIONS_PER_STEP = 20_000_000
FLOAT_FLAGS = {
    "cortex-m4": ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
    "cortex-m0plus": CPU_FLAGS["cortex-m0plus"],
}
CPU_NOTE = {"cortex-m4": "M4F, hard float", "cortex-m0plus": "soft float"}

APP_C = """\
/* What an application writes to call the keras2c model. */
#include "%(name)s.h"
int peer_setup(void) {
  %(name)s_initialize();
%(reset)s  return 0;
}
int peer_reset(void) {
%(reset)s  return 0;
}
int peer_run(float *x, float *y) {
  k2c_tensor in = {x, 2, %(in_numel)d, {%(in_shape)s, 1, 1, 1}};
  k2c_tensor out = {y, 1, %(outputs)d, {%(outputs)d, 1, 1, 1, 1}};
  %(name)s(&in, &out);
  return 0;
}
"""
HARNESS_C = """\
/* The emulator's buffers (not counted). */
float armharness_x[%(in_numel)d] __attribute__((aligned(8)));
float armharness_y[%(outputs)d] __attribute__((aligned(8)));
"""
VARIANTS = {"sequence": "peer_seq", "stateful step": "peer_step"}


def convert(model, python: Path, out: Path, log=print) -> dict[str, Any]:
    """Run keras2c (in its environment) once per model."""
    info_path = out / "convert.json"
    if info_path.exists() and all((out / f"{n}.c").exists() for n in VARIANTS.values()):
        return json.loads(info_path.read_text())
    out.mkdir(parents=True, exist_ok=True)
    npz = out / "model.npz"
    np.savez(npz, **model.weights, x_check=model.x, y_check=model.keras_y)
    log(f"  keras2c: converting with {python} ...")
    info = run_converter(python, Path(__file__).with_name("keras2c_child.py"),
                         [str(npz), str(out)], "keras2c")
    for key in ("rebuilt_max_abs_diff", "stateful_max_abs_diff"):
        if info[key] > 1e-4:
            raise PeerBuildError(f"keras2c: the network rebuilt in TensorFlow 2.14 differs "
                                 f"from the run's Keras model by {info[key]:g} ({key})")
    info_path.write_text(json.dumps(info, indent=1))
    return info


def classify(src: str) -> str:
    runtime = classify_runtime(src)
    if runtime:
        return runtime
    name = Path(src).name
    if name.startswith("peer_"):
        return "model (generated C)"
    if name == "keras2c_app.o":
        return "application"
    return "keras2c runtime"


def build(model, keras2c_dir: Path, convert_dir: Path, variant: str, cpu: str, opt: str,
          out: Path):
    name = VARIANTS[variant]
    out.mkdir(parents=True, exist_ok=True)
    include = out / "include"
    if not include.exists():
        include.symlink_to(keras2c_dir / "include", target_is_directory=True)
    for ext in (".c", ".h"):
        (out / f"{name}{ext}").write_text((convert_dir / f"{name}{ext}").read_text())
    t, d = model.x.shape[1:]
    stateful = variant == "stateful step"
    fields = {"name": name, "outputs": int(model.weights["wy"].shape[1]),
              "in_numel": d if stateful else t * d,
              "in_shape": f"1, {d}" if stateful else f"{t}, {d}",
              "reset": f"  {name}_reset_states();\n" if stateful else ""}
    (out / "keras2c_app.c").write_text(APP_C % fields)
    (out / "armharness.c").write_text(HARNESS_C % fields)
    cpu_flags = list(FLOAT_FLAGS[cpu])
    flags = [*cpu_flags, f"-{opt}", "-std=c99", "-ffunction-sections", "-fdata-sections",
             f"-I{out}", f"-I{keras2c_dir / 'include'}"]
    runtime = sorted((keras2c_dir / "include").glob("*.c"))
    objs = compile_c("arm-none-eabi-gcc", flags, [*runtime, out / f"{name}.c",
                                                  out / "keras2c_app.c", out / "armharness.c"],
                     out)
    return link(["arm-none-eabi-gcc", *cpu_flags], objs, out, cpu=cpu, opt=opt,
                entry_points=("peer_setup", "peer_run", "peer_reset"),
                stack_bytes=STACK_BYTES), fields


@contextmanager
def instruction_limit(most: int):
    """Let one emulated call run up to ``most`` instructions (at least the emulator's own
    limit), as keras2c's sequence API runs a whole sequence per call."""
    default = machine.MAX_INSTRUCTIONS_PER_CALL
    machine.MAX_INSTRUCTIONS_PER_CALL = max(default, most)
    try:
        yield
    finally:
        machine.MAX_INSTRUCTIONS_PER_CALL = default


def measure(model, keras2c_dir: Path, python: Path, variant: str, cpu: str, opt: str,
            work: Path, log=print) -> dict[str, Any]:
    convert_dir = work / "convert"
    info = convert(model, python, convert_dir, log)
    image, fields = build(model, keras2c_dir, convert_dir, variant, cpu, opt,
                          work / f"{VARIANTS[variant]}_{cpu}_{opt}")
    m = Machine(image)
    setup = m.call("peer_setup")
    setup_stack = m.stack_high_water()
    repaint_stack(m)
    xa, ya = m.address("armharness_x"), m.address("armharness_y")
    n, t, _d = model.x.shape
    outputs = fields["outputs"]
    counts = []
    if variant == "sequence":
        y = np.zeros((n, outputs), np.float32)
        for b in range(n):
            m.write(xa, model.x[b].astype(np.float32).tobytes())
            with instruction_limit(t * MAX_INSTRUCTIONS_PER_STEP):
                counts.append(m.call("peer_run", xa, ya).instructions / t)
            y[b] = np.frombuffer(m.read(ya, 4 * outputs), np.float32)
    else:
        y = np.zeros((n, t, outputs), np.float32)
        for b in range(n):
            m.call("peer_reset")
            for s in range(t):
                m.write(xa, model.x[b, s].astype(np.float32).tobytes())
                counts.append(m.call("peer_run", xa, ya).instructions)
                y[b, s] = np.frombuffer(m.read(ya, 4 * outputs), np.float32)
    sizes = size_summary(size_split(image.elf.with_suffix(".map"), image.elf, classify))
    stack = max(setup_stack, m.stack_high_water())
    return {
        **sizes, "ram": sizes["static"] + stack,
        "ram_split": {"static": sizes["static"], "stack": stack},
        "instructions_per_step": float(np.mean(counts)),
        "setup_instructions": setup.instructions,
        "float": CPU_NOTE[cpu], "y": y, "converter": info,
    }
