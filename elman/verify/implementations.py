"""Every implementation ``elman verify`` holds to the simulator, as a registry of factories.

An :class:`Implementation` claims to be bit-exact with the simulator of one
profile and can run the held-out data; each factory in ``IMPLEMENTATIONS``
returns the ones it provides for a run (one line each to add another). This
module composes the stages (the interpreters and the engines of ``runtime``,
the generated C of ``firmware_codegen``, its Cortex-M builds and emulation);
none of them imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from elman.firmware_codegen.arm.emulate import (
    CPU_TITLES,
    VERIFY_CPUS,
    VERIFY_FULL_CPUS,
    VERIFY_MAX_STEPS,
    VERIFY_MAX_STEPS_AVR,
    VERIFY_MAX_STEPS_OTHERS,
    run_emulated,
    run_emulated_tokens,
)
from elman.firmware_codegen.host import compiler, run_host_c, run_host_c_tokens
from elman.quantize.ir import QuantizedModel
from elman.runtime.interpreters import run_litert, run_tflm
from elman.runtime.outputs import StepOutputs
from elman.runtime.simulator import Simulator
from elman.targets import get_target
from elman.targets.simavr import fits
from elman.verify.inputs import VerifyInputs

NUMPY_ENGINE = "simulator, numpy engine"


@dataclass(frozen=True)
class VerifyContext:
    """What an implementation factory gets to build its runners."""

    run_dir: Path
    ir: QuantizedModel
    model: bytes  # the .tflite step model
    profiles: tuple[str, ...]
    progress: bool
    engine: str = "numba"  # the simulator engine every pair is compared with


@dataclass(frozen=True)
class Implementation:
    """One implementation that must equal the simulator of ``profile`` bit for bit.

    ``max_steps``: the sequence-steps it can afford (a slow emulator); it is then
    compared on that prefix of the data, and the report says so.
    """

    name: str
    profile: str
    run: Callable[[VerifyInputs], StepOutputs]
    max_steps: int | None = None


ImplementationFactory = Callable[[VerifyContext], list[Implementation]]


def _progress_bar(ctx: VerifyContext, total: int, name: str):
    if not ctx.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="step", leave=False)


def _interpreter_run(ctx: VerifyContext, runner, name: str
                     ) -> Callable[[VerifyInputs], StepOutputs]:
    def run(inputs: VerifyInputs) -> StepOutputs:
        bar = _progress_bar(ctx, inputs.sequences * inputs.steps, name)
        try:  # one invoke per step: unequal lengths step their real samples only
            return runner(ctx.model, ctx.ir, inputs.x_q,
                          progress=None if bar is None else bar.update, lengths=inputs.lengths)
        finally:
            if bar is not None:
                bar.close()

    return run


def interpreter_implementations(ctx: VerifyContext) -> list[Implementation]:
    """LiteRT ``BUILTIN_REF`` (profile ``tflite``) and TFLite Micro (profile ``tflm``)."""
    out = []
    if "tflite" in ctx.profiles:
        name = "LiteRT BUILTIN_REF"
        out.append(Implementation(name, "tflite", _interpreter_run(ctx, run_litert, name)))
    if "tflm" in ctx.profiles:
        name = "TFLite Micro"
        out.append(Implementation(name, "tflm", _interpreter_run(ctx, run_tflm, name)))
    return out


def engine_implementations(ctx: VerifyContext) -> list[Implementation]:
    """Where the simulator runs compiled (numba), its numpy reference engine too: the
    proof that the fast engine computed what the reference computes, on this data."""
    if ctx.engine != "numba":
        return []

    def reference(profile: str) -> Callable[[VerifyInputs], StepOutputs]:
        return lambda inputs: Simulator(ctx.ir, profile, engine="numpy").run(inputs.x_q)

    return [Implementation(f"{NUMPY_ENGINE} ({p})", p, reference(p)) for p in ctx.profiles]


def host_c_implementations(ctx: VerifyContext) -> list[Implementation]:
    """The generated C of each profile, compiled for this machine (``-O2``); text models
    run the token step (``<prefix>_step_token``) over the token ids."""
    name = f"generated C ({Path(compiler()).name} -O2)"

    def runner(profile: str) -> Callable[[VerifyInputs], StepOutputs]:
        def run(inputs: VerifyInputs) -> StepOutputs:
            if inputs.ids is not None:
                return run_host_c_tokens(ctx.ir, inputs.ids, profile=profile)
            return run_host_c(ctx.ir, inputs.x_q, profile=profile)

        return run

    return [Implementation(name, profile, runner(profile)) for profile in ctx.profiles]


def emulated_implementations(ctx: VerifyContext) -> list[Implementation]:
    """The C of each profile cross-compiled at -O2 and stepped on every registered core
    (``elman.targets``: Cortex-M0+ and RISC-V portable C, Cortex-M4/M7/M33 DSP, Cortex-M55
    MVE, the Arduino Uno's ATmega328P in simavr where avr-gcc and simavr are installed and
    the model's image fits its 32 KB flash and 2 KB RAM), over at most ``VERIFY_MAX_STEPS``
    sequence-steps of the held-out data on the M0+ and M4, ``VERIFY_MAX_STEPS_AVR`` on the
    Uno and ``VERIFY_MAX_STEPS_OTHERS`` on the others; text models run the token step."""

    def runner(profile: str, cpu: str) -> Callable[[VerifyInputs], StepOutputs]:
        def run(inputs: VerifyInputs) -> StepOutputs:
            if inputs.ids is not None and ctx.ir.embedding is not None:
                return run_emulated_tokens(ctx.ir, inputs.ids, profile=profile, cpu=cpu,
                                           count_instructions=False).outputs
            return run_emulated(ctx.ir, inputs.x_q, profile=profile, cpu=cpu,
                                count_instructions=False).outputs
        return run

    def max_steps(cpu: str) -> int:
        if cpu in VERIFY_FULL_CPUS:
            return VERIFY_MAX_STEPS
        return VERIFY_MAX_STEPS_AVR if get_target(cpu).arch == "avr" else VERIFY_MAX_STEPS_OTHERS

    return [Implementation(f"emulated {CPU_TITLES[cpu]} ({get_target(cpu).compiler} -O2)",
                           profile, runner(profile, cpu), max_steps=max_steps(cpu))
            for profile in ctx.profiles for cpu in VERIFY_CPUS
            if fits(ctx.ir, cpu, profile=profile, opt="O2")]


# Every factory here is asked for its implementations, in this order.
IMPLEMENTATIONS: list[ImplementationFactory] = [
    interpreter_implementations,
    engine_implementations,
    host_c_implementations,
    emulated_implementations,
]
