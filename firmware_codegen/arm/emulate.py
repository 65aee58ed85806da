"""Run the generated C of a model on an emulated core (any registered target), step by step.

``run_emulated(ir, x_q, cpu=..., opt=...)`` generates the model's C, builds a
bare-metal image for the core (``build.py``), and calls ``<prefix>_step`` once
per time step in unicorn (``machine.py``), exactly as firmware would: the state
struct, the input and the output live in the core's RAM, written and read
between calls. Targets emulated in QEMU (the Cortex-M55) run a whole image
instead (``elman.targets.qemu``), and so does the Arduino Uno's ATmega328P in simavr
(``elman.targets.simavr``, whose cycles are exact). The outputs are the same :class:`StepOutputs`
the simulator returns, so the two compare bit for bit; the instruction counts
are exact; cycles are the target's cycle model applied to the executed
instructions (an estimate).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from elman.firmware_codegen.arm.build import ArmImage, build_image
from elman.firmware_codegen.arm.machine import Machine
from elman.quantize.ir import QuantizedModel
from elman.runtime.outputs import StepOutputs
from elman.targets import TARGETS, get_target
from elman.targets.disassembly import instruction_costs

# Functions whose instructions are the matrix-vector products (when not inlined).
KERNEL_SUFFIXES = ("_matvec_s8", "_mac_4x4")
# the cores `elman verify` runs the C on: every target
VERIFY_CPUS = tuple(TARGETS)
# the two cores of the first release compare up to VERIFY_MAX_STEPS sequence-steps; the others,
# which add one build each to every verify, up to VERIFY_MAX_STEPS_OTHERS (the report says so)
VERIFY_FULL_CPUS = ("cortex-m0plus", "cortex-m4")
VERIFY_MAX_STEPS_OTHERS = 400
# the 8-bit Uno in simavr: about 4,000 cycles per unit and step, so one BasicMotions sequence
VERIFY_MAX_STEPS_AVR = 100
# sequence-steps `elman verify` emulates per core and profile (about 1 ms each on ARMv6-M);
# the whole test split of the built-in sensor sets fits, long text streams are cut
VERIFY_MAX_STEPS = 5000
CPU_TITLES = {name: t.title for name, t in TARGETS.items()}


@dataclass(frozen=True)
class EmulatedRun:
    """Outputs and exact costs of running a model's C on an emulated core."""

    outputs: StepOutputs
    cpu: str
    opt: str
    profile: str
    macs_per_step: int
    instructions_per_step: float  # mean over all steps (head included every step)
    instructions_min: int
    instructions_max: int
    matvec_instructions_per_step: float | None  # in kernel functions, when they are separate
    stack_bytes: int  # deepest stack use of any step call
    sizes: dict[str, int]
    by_function: dict[str, float] = field(default_factory=dict)  # mean per step
    cycles_per_step: float | None = None  # the target's cycle model (an estimate), mean
    cycles_max: float | None = None  # the same model's cycles of the slowest step
    cycles_exact: bool = False  # counted by the emulator (simavr), not a cycle model

    def microseconds_per_step(self, clock_hz: float) -> float | None:
        if self.cycles_per_step is None:
            return None
        return self.cycles_per_step / clock_hz * 1e6

    @property
    def instructions_per_mac(self) -> float:
        return self.instructions_per_step / self.macs_per_step

    @property
    def matvec_instructions_per_mac(self) -> float | None:
        if self.matvec_instructions_per_step is None:
            return None
        return self.matvec_instructions_per_step / self.macs_per_step

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu": self.cpu, "opt": self.opt, "profile": self.profile,
            "steps": int(self.outputs.batch * self.outputs.steps),
            "macs_per_step": self.macs_per_step,
            "instructions_per_step": round(self.instructions_per_step, 2),
            "instructions_per_step_min": self.instructions_min,
            "instructions_per_step_max": self.instructions_max,
            "instructions_per_mac": round(self.instructions_per_mac, 4),
            "matvec_instructions_per_step": None if self.matvec_instructions_per_step is None
            else round(self.matvec_instructions_per_step, 2),
            "matvec_instructions_per_mac": None if self.matvec_instructions_per_mac is None
            else round(self.matvec_instructions_per_mac, 4),
            "stack_bytes": self.stack_bytes,
            "sizes": dict(self.sizes),
            "by_function": {k: round(v, 2) for k, v in self.by_function.items()},
            "cycles_per_step": None if self.cycles_per_step is None
            else round(self.cycles_per_step, 1),
            "cycles_max": None if self.cycles_max is None else round(self.cycles_max, 1),
            "cycles_exact": self.cycles_exact,
        }


def harness_c(ir: QuantizedModel, prefix: str) -> str:
    """Buffers the emulator writes and reads: the state, one input, one output."""
    ctype = "int8_t" if ir.state_bits == 8 else "int16_t"
    return (
        f'#include "{prefix}_model.h"\n'
        f"{prefix}_state_t armharness_state __attribute__((aligned(8)));\n"
        f"{ctype} armharness_x[{max(ir.input_dim, 1)}] __attribute__((aligned(8)));\n"
        f"{ctype} armharness_y[{max(ir.output_dim, 1)}] __attribute__((aligned(8)));\n"
    )


def entry_points(ir: QuantizedModel, prefix: str) -> tuple[str, ...]:
    names = [f"{prefix}_reset", f"{prefix}_step"]
    if ir.embedding is not None:
        names.append(f"{prefix}_step_token")
    return tuple(names)


def step_sources(ir: QuantizedModel, *, prefix: str, profile: str, cpu: str) -> dict[str, str]:
    """The generated C an image of ``cpu`` holds: all of it, less the float helpers
    (``<prefix>_io.c``, which include ``math.h``) on a target without a C library."""
    from elman.firmware_codegen.generate import generate_c

    sources = generate_c(ir, prefix=prefix, profile=profile, source_sha256=ir.source_sha256)
    if not get_target(cpu).c_library:
        sources.pop(f"{prefix}_io.c", None)
    return sources


def build_model_image(ir: QuantizedModel, out_dir: Path | str, *, profile: str = "tflm",
                      cpu: str = "cortex-m4", opt: str = "O2", prefix: str = "elman",
                      portable: bool = False) -> ArmImage:
    """Generate the model's C and link it with the emulator harness for ``cpu``;
    ``portable`` builds the portable C kernels even where the core has the DSP extension."""
    sources = step_sources(ir, prefix=prefix, profile=profile, cpu=cpu)
    defines = (f"{prefix.upper()}_PORTABLE",) if portable else ()
    return build_image(sources, out_dir, cpu=cpu, opt=opt, harness=harness_c(ir, prefix),
                       entry_points=entry_points(ir, prefix), defines=defines)


def run_emulated(ir: QuantizedModel, x_q: np.ndarray, *, profile: str = "tflm",
                 cpu: str = "cortex-m4", opt: str = "O2", prefix: str = "elman",
                 work_dir: Path | str | None = None, portable: bool = False,
                 count_instructions: bool = True) -> EmulatedRun:
    """Run int8 (int16) inputs ``x_q`` (B, T, D) through the model's C on an emulated ``cpu``
    (``portable``: the portable C kernels even on a core with the DSP extension;
    ``count_instructions=False``: outputs only, much faster, every count 0)."""
    x_q = np.asarray(x_q)
    if x_q.ndim != 3 or x_q.shape[2] != ir.input_dim:
        raise ValueError(f"x_q must be (batch, steps, {ir.input_dim}), got {x_q.shape}")
    return _run(ir, x_q.astype(ir.state_dtype), tokens=False, profile=profile, cpu=cpu, opt=opt,
                prefix=prefix, work_dir=work_dir, portable=portable,
                count_instructions=count_instructions)


def run_emulated_tokens(ir: QuantizedModel, ids: np.ndarray, *, profile: str = "tflm",
                        cpu: str = "cortex-m4", opt: str = "O2", prefix: str = "elman",
                        work_dir: Path | str | None = None,
                        count_instructions: bool = True) -> EmulatedRun:
    """Run token ids (B, T) of a text model through ``<prefix>_step_token``."""
    ids = np.asarray(ids)
    if ir.embedding is None or ids.ndim != 2:
        raise ValueError("token ids (batch, steps) need a text model with an embedding")
    return _run(ir, ids.astype(np.int64), tokens=True, profile=profile, cpu=cpu, opt=opt,
                prefix=prefix, work_dir=work_dir, portable=False,
                count_instructions=count_instructions)


def _run(ir: QuantizedModel, inputs: np.ndarray, *, tokens: bool, profile: str, cpu: str,
         opt: str, prefix: str, work_dir: Path | str | None, portable: bool,
         count_instructions: bool = True) -> EmulatedRun:
    if get_target(cpu).emulator == "qemu":
        from elman.targets.qemu import run_qemu

        return run_qemu(ir, inputs, tokens=tokens, profile=profile, cpu=cpu, opt=opt,
                        prefix=prefix, work_dir=work_dir, portable=portable,
                        count=count_instructions)
    if get_target(cpu).emulator == "simavr":  # counts every step exactly at no extra cost
        from elman.targets.simavr import run_simavr

        return run_simavr(ir, inputs, tokens=tokens, profile=profile, cpu=get_target(cpu).name,
                          opt=opt, prefix=prefix, work_dir=work_dir)
    with tempfile.TemporaryDirectory(prefix="elman-arm-") as tmp:
        out = Path(work_dir) if work_dir is not None else Path(tmp)
        image = build_model_image(ir, out, profile=profile, cpu=cpu, opt=opt, prefix=prefix,
                                  portable=portable)
        machine = Machine(image, instruction_costs(image.elf, cpu) if count_instructions
                          else None, count_instructions=count_instructions)
        return _execute(ir, machine, inputs, tokens=tokens, profile=profile, prefix=prefix)


def _execute(ir: QuantizedModel, m: Machine, inputs: np.ndarray, *, tokens: bool, profile: str,
             prefix: str) -> EmulatedRun:
    batch, steps = inputs.shape[:2]
    units, out_dim = ir.state_bytes, ir.output_dim
    dtype = np.dtype(ir.state_dtype)
    h = np.zeros((batch, steps, units), dtype)
    y = np.zeros((batch, steps, out_dim), dtype) if out_dim else None
    state, x_addr = m.address("armharness_state"), m.address("armharness_x")
    y_addr = m.address("armharness_y") if out_dim else 0
    step_fn = f"{prefix}_step_token" if tokens else f"{prefix}_step"
    counts: list[int] = []
    cycles: list[float] = []
    totals: dict[str, int] = {}
    for b in range(batch):
        m.call(f"{prefix}_reset", state)
        for t in range(steps):
            if tokens:
                res = m.call(step_fn, state, int(inputs[b, t]), y_addr)
                if res.r0 != 0:
                    raise ValueError(f"token {int(inputs[b, t])} rejected by {step_fn}")
            else:
                m.write(x_addr, inputs[b, t].tobytes())
                res = m.call(step_fn, state, x_addr, y_addr)
            h[b, t] = np.frombuffer(m.read(state, units * dtype.itemsize), dtype)
            if y is not None:
                y[b, t] = np.frombuffer(m.read(y_addr, out_dim * dtype.itemsize), dtype)
            counts.append(res.instructions)
            cycles.append(res.cycles or 0.0)
            for name, n in res.by_function.items():
                totals[name] = totals.get(name, 0) + n
    n_steps = max(len(counts), 1)
    kernel = [n for name, n in totals.items() if name.endswith(KERNEL_SUFFIXES)]
    return EmulatedRun(
        outputs=StepOutputs(h=h, y=y), cpu=m.image.cpu, opt=m.image.opt, profile=profile,
        macs_per_step=ir.macs_per_step,
        instructions_per_step=sum(counts) / n_steps,
        instructions_min=min(counts, default=0), instructions_max=max(counts, default=0),
        matvec_instructions_per_step=sum(kernel) / n_steps if kernel else None,
        stack_bytes=m.stack_high_water(), sizes=m.image.sizes.to_dict(),
        by_function={k: v / n_steps for k, v in sorted(totals.items())},
        cycles_per_step=sum(cycles) / n_steps if counts else None,
        cycles_max=max(cycles) if counts else None,
    )
