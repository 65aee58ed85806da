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

from elman.targets.clock import DEFAULT_CLOCK_HZ
from elman.targets.cycles import CYCLE_MODELS, CycleModel

from elman.errors import ToolchainError

ARM_HINT = "apt-get install -y --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi"
RISCV_HINT = "apt-get install -y --no-install-recommends gcc-riscv64-unknown-elf"
QEMU_HINT = "apt-get install -y --no-install-recommends qemu-system-arm"
AVR_HINT = "apt-get install -y --no-install-recommends gcc-avr avr-libc"
SIMAVR_HINT = "apt-get install -y --no-install-recommends simavr libsimavr-dev"

ARM_LINK = ("-nostartfiles", "--specs=nano.specs")
ARM_LIBS = ("-lm", "-lgcc")


@dataclass(frozen=True)
class Target:
    """One core: how to build for it, run it, count it and time it."""

    name: str  # the --cpu value
    title: str
    isa: str  # the architecture, in words
    arch: str  # "arm", "riscv" or "avr": the instruction set the emulator decodes
    compiler: str  # the cross gcc (on PATH)
    flags: tuple[str, ...]  # core flags (before -O<level> and the common flags)
    kernels: str  # "mve", "dsp", "armv6m", "avr" or "portable": the matvec path the C selects
    emulator: str  # "unicorn", "qemu" or "simavr"
    emulator_cpu: str  # unicorn cpu model constant, "<qemu machine>/<qemu cpu>", simavr's mcu
    cycle_model: str  # a key of elman.targets.cycles.CYCLE_MODELS
    install_hint: str
    link_flags: tuple[str, ...] = ARM_LINK
    libs: tuple[str, ...] = ARM_LIBS
    note: str = ""
    c_library: bool = True  # headers of a C library (math.h): the float helpers of _io.c
    clock_hz: float = DEFAULT_CLOCK_HZ  # the time per step in reports, unless --clock says
    flash_bytes: int | None = None  # the part's memories, where a model can outgrow them
    ram_bytes: int | None = None
    aliases: tuple[str, ...] = ()  # other --cpu names of the entry
    state_bits: tuple[int, ...] = (8, 16)  # the state widths its kernels build

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
                "clock_hz": self.clock_hz, "flash_bytes": self.flash_bytes,
                "ram_bytes": self.ram_bytes, "cycle_model": self.cycles.describe()}


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
    Target("atmega328p", "ATmega328P (Arduino Uno)", "AVR (avr5), 8-bit", "avr", "avr-gcc",
           ("-mmcu=atmega328p",), "avr", "simavr", "atmega328p", "atmega328p",
           f"{AVR_HINT} && {SIMAVR_HINT}", link_flags=(), libs=(), clock_hz=16_000_000,
           flash_bytes=32 * 1024, ram_bytes=2 * 1024, aliases=("arduino-uno", "uno"),
           state_bits=(8,),
           note="16-bit int; weights and tables in flash (PROGMEM, read with LPM); the "
                "MULS matrix-vector kernel; simavr counts every cycle (exact, not a model)"),
)}
ALIASES: dict[str, str] = {a: t.name for t in TARGETS.values() for a in t.aliases}


def target_names() -> tuple[str, ...]:
    return tuple(TARGETS)


def known_targets_line() -> str:
    return ", ".join(f"{t.name} ({t.title})" + (f" [also {', '.join(t.aliases)}]"
                                                 if t.aliases else "")
                     for t in TARGETS.values())


def get_target(name: str) -> Target:
    """The entry of ``name`` (or of one of its aliases: ``arduino-uno``), or one
    ToolchainError that lists every known target."""
    try:
        return TARGETS[ALIASES.get(name, name)]
    except KeyError:
        raise ToolchainError(f"unknown cpu {name!r}; known targets: {known_targets_line()}"
                             ) from None
