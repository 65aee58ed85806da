"""The cores elman builds for: one :class:`Target` entry each.

A target is everything that differs between cores: the cross compiler and its
flags, the kernel variant the generated C selects there (by the compiler's
feature macros: ``__ARM_FEATURE_MVE``, ``__ARM_FEATURE_DSP``, else portable C),
the emulator that runs and counts it, and the cycle model that turns exact
instruction counts into an estimate of time. The target-neutral machinery
(linking with sizes from the linker, stack painting, per-function instruction
attribution) lives in ``elman.firmware_codegen.arm`` and serves every entry.

Adding a core is one entry here plus, where it needs them, its kernels in
``firmware_codegen/templates/kernels/``.
"""

from __future__ import annotations

from dataclasses import dataclass

from elman.targets.cycles import CYCLE_MODELS, CycleModel

from elman.errors import ToolchainError

ARM_HINT = "apt-get install -y --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi"
RISCV_HINT = "apt-get install -y --no-install-recommends gcc-riscv64-unknown-elf"
QEMU_HINT = "apt-get install -y --no-install-recommends qemu-system-arm"

ARM_LINK = ("-nostartfiles", "--specs=nano.specs")
ARM_LIBS = ("-lm", "-lgcc")


@dataclass(frozen=True)
class Target:
    """One core: how to build for it, run it, count it and time it."""

    name: str  # the --cpu value
    title: str
    isa: str  # the architecture, in words
    arch: str  # "arm" or "riscv": the instruction set the emulator decodes
    compiler: str  # the cross gcc (on PATH)
    flags: tuple[str, ...]  # core flags (before -O<level> and the common flags)
    kernels: str  # "mve", "dsp", "armv6m" or "portable": the matvec path the C selects there
    emulator: str  # "unicorn" or "qemu"
    emulator_cpu: str  # unicorn cpu model constant, or "<qemu machine>/<qemu cpu>"
    cycle_model: str  # a key of elman.targets.cycles.CYCLE_MODELS
    install_hint: str
    link_flags: tuple[str, ...] = ARM_LINK
    libs: tuple[str, ...] = ARM_LIBS
    note: str = ""
    c_library: bool = True  # headers of a C library (math.h): the float helpers of _io.c

    @property
    def cycles(self) -> CycleModel:
        return CYCLE_MODELS[self.cycle_model]

    @property
    def tool_prefix(self) -> str:
        """``arm-none-eabi-`` of ``arm-none-eabi-gcc``: the binutils of the same toolchain."""
        return self.compiler[: -len("gcc")]

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "title": self.title, "isa": self.isa,
                "compiler": self.compiler, "flags": list(self.flags), "kernels": self.kernels,
                "emulator": self.emulator, "emulator_cpu": self.emulator_cpu,
                "cycle_model": self.cycles.describe()}


ARM_SOFT = ("-mthumb", "-mfloat-abi=soft")

TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("cortex-m0plus", "Cortex-M0+", "ARMv6-M", "arm", "arm-none-eabi-gcc",
           ("-mcpu=cortex-m0plus", *ARM_SOFT), "armv6m", "unicorn",
           "UC_CPU_ARM_CORTEX_M0", "cortex-m0plus", ARM_HINT,
           note="unicorn has no M0+ model; its Cortex-M0 runs the same ARMv6-M code"),
    Target("cortex-m4", "Cortex-M4", "ARMv7E-M + DSP", "arm", "arm-none-eabi-gcc",
           ("-mcpu=cortex-m4", *ARM_SOFT), "dsp", "unicorn", "UC_CPU_ARM_CORTEX_M4",
           "cortex-m4", ARM_HINT),
    Target("cortex-m7", "Cortex-M7", "ARMv7E-M + DSP", "arm", "arm-none-eabi-gcc",
           ("-mcpu=cortex-m7", *ARM_SOFT), "dsp", "unicorn", "UC_CPU_ARM_CORTEX_M7",
           "cortex-m7", ARM_HINT),
    Target("cortex-m33", "Cortex-M33", "ARMv8-M Mainline + DSP", "arm", "arm-none-eabi-gcc",
           ("-mcpu=cortex-m33", *ARM_SOFT), "dsp", "unicorn", "UC_CPU_ARM_CORTEX_M33",
           "cortex-m33", ARM_HINT,
           note="unicorn's Cortex-M33 model executes the DSP extension (SMLAD, SXTB16, QADD, "
                "SSAT), checked by tests/test_targets.py"),
    Target("cortex-m55", "Cortex-M55", "ARMv8.1-M Mainline + MVE (Helium) + DSP", "arm",
           "arm-none-eabi-gcc", ("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"), "mve",
           "qemu", "mps3-an547/cortex-m55", "cortex-m55", ARM_HINT,
           note="whole image under qemu-system-arm -M mps3-an547 (CPACR grants CP10/CP11); "
                "instructions counted from QEMU's -singlestep exec trace; hard-float ABI, "
                "which GCC 12 needs for MVE"),
    Target("rv32imc", "RISC-V RV32IMC", "RV32IMC", "riscv", "riscv64-unknown-elf-gcc",
           ("-march=rv32imc", "-mabi=ilp32", "-msmall-data-limit=0"), "portable", "unicorn",
           "UC_CPU_RISCV32_SIFIVE_E31", "rv32imc", RISCV_HINT,
           link_flags=("-nostdlib", "-nostartfiles"), libs=("-lgcc",), c_library=False,
           note="freestanding (no C library: the step needs none; the float helpers of "
                "<prefix>_io.c, which include math.h, are left out of its images); libgcc "
                "from the rv32im multilib"),
)}


def target_names() -> tuple[str, ...]:
    return tuple(TARGETS)


def known_targets_line() -> str:
    return ", ".join(f"{t.name} ({t.title})" for t in TARGETS.values())


def get_target(name: str) -> Target:
    """The entry of ``name``, or one ToolchainError that lists every known target."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ToolchainError(f"unknown cpu {name!r}; known targets: {known_targets_line()}"
                             ) from None
