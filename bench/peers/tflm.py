"""TFLite Micro on the run's own ``.tflite``, in elman's emulator harness.

The program is what a firmware engineer writes: the model in flash, a
``MicroMutableOpResolver<3>`` (FULLY_CONNECTED, ADD, TANH), a ``MicroInterpreter``
over a tensor arena, and a step that copies ``x_t`` and ``h_{t-1}`` into the input
tensors, calls ``Invoke()`` and copies ``h_t`` and ``y_t`` out. Objects live in
static storage built at run time (placement new), so the image needs no startup
code. The emulator's buffers (input, state, output, the largest arena tried) sit
in the harness sections and are not counted; the arena is counted at the smallest
size with which ``AllocateTensors()`` succeeds, found by bisection in the emulator
(not ``arena_used_bytes()``, which leaves out alignment and the allocator's own
needs). Every step's int8 ``h_t`` and ``y_t`` is compared with elman's simulator
(profile ``tflm``).
"""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import Any

import numpy as np
from elman.firmware_codegen.arm.machine import Machine
from image import (
    PeerBuildError,
    classify_runtime,
    link,
    map_contributions,
    repaint_stack,
    run_tool,
    size_split,
    size_summary,
    smallest_buffer,
)
from tflm_build import TflmLibrary, build_closure

ARENA_MAX = 256 * 1024
OPS = ("FULLY_CONNECTED", "ADD", "TANH")
SEEDS = ("fully_connected", "fully_connected_common", "add", "add_common", "tanh")
# the make list an archive member came from -> the part of the image it is
PARTS = {"core": "framework", "kernels": "kernels", "third_party_kernels": "CMSIS-NN",
         "third_party": "third party"}


def model_source(model: bytes) -> str:
    rows = [", ".join(f"0x{b:02x}" for b in model[i:i + 16]) for i in range(0, len(model), 16)]
    return ("// The model, as a firmware keeps it: a const array in flash.\n"
            "#include <cstdint>\n"
            f"extern const uint32_t elman_peer_model_len = {len(model)};\n"
            "alignas(16) extern const unsigned char elman_peer_model[] = {\n  "
            + ",\n  ".join(rows) + "\n};\n")


def app_source(ir: Any) -> str:
    sig = ir.signature
    y_copy = (f"  std::memcpy(y, interpreter->output({sig.y_output})->data.int8, "
              f"{ir.output_dim});\n" if sig.y_output is not None else "")
    return f"""// What an application writes to run the step model under TFLite Micro.
#include <cstdint>
#include <cstring>
#include <new>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

extern const unsigned char elman_peer_model[];

namespace {{
using Resolver = tflite::MicroMutableOpResolver<3>;
alignas(Resolver) unsigned char resolver_storage[sizeof(Resolver)];
alignas(tflite::MicroInterpreter) unsigned char interpreter_storage[
    sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter* interpreter = nullptr;
}}  // namespace

extern "C" int peer_setup(uint8_t* arena, uint32_t arena_bytes) {{
  const tflite::Model* model = tflite::GetModel(elman_peer_model);
  Resolver* resolver = new (resolver_storage) Resolver();
  if (resolver->AddFullyConnected() != kTfLiteOk || resolver->AddAdd() != kTfLiteOk ||
      resolver->AddTanh() != kTfLiteOk) {{
    return 1;
  }}
  interpreter = new (interpreter_storage)
      tflite::MicroInterpreter(model, *resolver, arena, arena_bytes);
  return interpreter->AllocateTensors() == kTfLiteOk ? 0 : 2;
}}

extern "C" int peer_step(const int8_t* x, int8_t* h, int8_t* y) {{
  std::memcpy(interpreter->input({sig.x_input})->data.int8, x, {ir.input_dim});
  std::memcpy(interpreter->input({sig.h_inputs[0]})->data.int8, h, {ir.state_bytes});
  if (interpreter->Invoke() != kTfLiteOk) {{
    return 1;
  }}
  std::memcpy(h, interpreter->output({sig.h_outputs[0]})->data.int8, {ir.state_bytes});
{y_copy}  return 0;
}}
"""


def harness_source(ir: Any) -> str:
    return ("/* The emulator's buffers (not counted): input, state, output, arena. */\n"
            "#include <stdint.h>\n"
            f"uint8_t armharness_arena[{ARENA_MAX}] __attribute__((aligned(16)));\n"
            f"int8_t armharness_x[{ir.input_dim}] __attribute__((aligned(8)));\n"
            f"int8_t armharness_h[{ir.state_bytes}] __attribute__((aligned(8)));\n"
            f"int8_t armharness_y[{max(ir.output_dim, 1)}] __attribute__((aligned(8)));\n")


def build_program(ir: Any, model: bytes, lib_builder, out: Path) -> tuple[TflmLibrary, Any]:
    """Compile the application and link it; ``lib_builder(probe)`` returns the TFLM
    library (built as far as the program needs)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "model_data.cc").write_text(model_source(model), encoding="utf-8")
    (out / "tflm_app.cc").write_text(app_source(ir), encoding="utf-8")
    (out / "armharness.c").write_text(harness_source(ir), encoding="utf-8")
    state: dict[str, Any] = {}

    def compile_app(lib: TflmLibrary) -> list[str]:
        if state.get("lib") is not lib:
            objs = []
            for name in ("model_data.cc", "tflm_app.cc"):
                obj = out / (name.rsplit(".", 1)[0] + ".o")
                run_tool([*lib.cxx, "-c", str(out / name), "-o", str(obj)], f"compiling {name}")
                objs.append(str(obj))
            cc = lib.cxx[0].replace("g++", "gcc")
            run_tool([cc, *lib.ld_flags[:4], "-O2", "-c", str(out / "armharness.c"), "-o",
                      str(out / "armharness.o")], "compiling the harness")
            state["lib"], state["objs"] = lib, [*objs, str(out / "armharness.o")]
        return state["objs"]

    def do_link(lib: TflmLibrary):
        linker = [lib.cxx[0], *[f for f in lib.ld_flags if f.startswith("-m")]]
        cpu = lib.config.cpu
        return link(linker, [*compile_app(lib), str(lib.archive)], out, cpu=cpu,
                    opt=lib.config.opt, entry_points=("peer_setup", "peer_step"),
                    libs=(*lib.libs, "-lgcc"))

    def probe(lib: TflmLibrary) -> str:
        try:
            do_link(lib)
        except PeerBuildError as exc:
            return str(exc)
        return ""

    lib = lib_builder(probe)
    return lib, do_link(lib)


def _setup(image, arena: int) -> tuple[Machine, Any]:
    m = Machine(image)
    res = m.call("peer_setup", m.address("armharness_arena"), arena)
    return m, res


def smallest_arena(image) -> int:
    """The smallest arena (bytes) with which ``AllocateTensors()`` succeeds; bisection
    in the emulator, each try on a freshly loaded image."""
    return smallest_buffer(lambda n: _setup(image, n)[1].r0 == 0, ARENA_MAX)


def classify(src: str) -> str:
    if src.endswith("model_data.o"):
        return "model (.tflite)"
    if src.endswith("tflm_app.o"):
        return "application"
    runtime = classify_runtime(src)
    if runtime:
        return runtime
    member = src.rsplit("(", 1)[-1].rstrip(")")
    kind, _, path = member.partition("__")
    if kind == "core" and path.startswith("tensorflow_lite_kernels_"):
        return "kernels"  # TFLite's shared kernel math (requantization, tensor utils)
    return PARTS.get(kind, "other")


def part_of_functions(image, map_path: Path) -> dict[str, str]:
    """Function symbol -> the part (framework, kernels, ...) whose code it is."""
    spans = sorted((addr, addr + size, classify(src))
                   for sec, src, addr, size in map_contributions(map_path)
                   if sec == ".text")
    starts = [s[0] for s in spans]
    out = {}
    for name, sym in image.symbols.items():
        if sym.is_function:
            i = bisect.bisect_right(starts, sym.address) - 1
            out[name] = spans[i][2] if i >= 0 and sym.address < spans[i][1] else "other"
    return out


def run_steps(image, arena: int, x_q: np.ndarray, units: int, out_dim: int):
    """Set up with ``arena`` bytes and run every step; returns outputs and costs."""
    m, setup = _setup(image, arena)
    if setup.r0 != 0:
        raise PeerBuildError(f"peer_setup failed with {arena} bytes of arena")
    setup_stack = m.stack_high_water()
    repaint_stack(m)
    batch, steps = x_q.shape[:2]
    h = np.zeros((batch, steps, units), np.int8)
    y = np.zeros((batch, steps, out_dim), np.int8)
    xa, ha, ya = (m.address(f"armharness_{n}") for n in ("x", "h", "y"))
    counts, by_function = [], {}
    for b in range(batch):
        m.write(ha, bytes(units))
        for t in range(steps):
            m.write(xa, x_q[b, t].astype(np.int8).tobytes())
            res = m.call("peer_step", xa, ha, ya)
            if res.r0 != 0:
                raise PeerBuildError(f"Invoke() failed at sequence {b}, step {t}")
            h[b, t] = np.frombuffer(m.read(ha, units), np.int8)
            y[b, t] = np.frombuffer(m.read(ya, out_dim), np.int8)
            counts.append(res.instructions)
            for k, v in res.by_function.items():
                by_function[k] = by_function.get(k, 0) + v
    n = len(counts)
    return {"h": h, "y": y, "instructions": counts,
            "by_function": {k: v / n for k, v in by_function.items()},
            "setup_instructions": setup.instructions, "setup_stack": setup_stack,
            "step_stack": m.stack_high_water()}


def measure(ir: Any, model: bytes, x_q: np.ndarray, tree: Path, config, out: Path,
            jobs: int = 2, log=print) -> dict[str, Any]:
    """Build, size, bisect the arena, run and time TFLM for one configuration."""
    lib, image = build_program(
        ir, model, lambda probe: build_closure(tree, config, SEEDS, probe, jobs, log), out)
    map_path = out / "image.map"
    sizes = size_summary(size_split(map_path, image.elf, classify))
    arena = smallest_arena(image)
    run = run_steps(image, arena, x_q, ir.state_bytes, ir.output_dim)
    parts = part_of_functions(image, map_path)
    per_part: dict[str, float] = {}
    for fn, v in run["by_function"].items():
        per_part[parts.get(fn, "other")] = per_part.get(parts.get(fn, "other"), 0) + v
    top = sorted(run["by_function"].items(), key=lambda kv: -kv[1])[:12]
    stack = max(run["setup_stack"], run["step_stack"])
    return {
        "config": {"cpu": config.cpu, "kernels": config.kernels, "opt": config.opt},
        "h": run["h"], "y": run["y"], **sizes,
        "ram": arena + sizes["static"] + stack + ir.state_bytes,
        "ram_split": {"arena": arena, "static": sizes["static"], "stack": stack,
                      "state": ir.state_bytes},
        "stack_setup": run["setup_stack"], "stack_step": run["step_stack"],
        "instructions_per_step": float(np.mean(run["instructions"])),
        "instructions_min": int(min(run["instructions"])),
        "instructions_max": int(max(run["instructions"])),
        "instructions_by_part": {k: round(v, 1) for k, v in sorted(per_part.items())},
        "instructions_top_functions": {k: round(v, 1) for k, v in top},
        "setup_instructions": run["setup_instructions"],
        "compile_flags": lib.cxx[1:],
    }
