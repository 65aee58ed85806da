"""The ``arm-none-eabi-gcc`` cross toolchain: where it is, and the flags per core.

Every build is freestanding C99 (no startup files, no heap, no stdio), with one
section per function and per object so that ``--gc-sections`` keeps only what
the step reaches. Floating point is never used by the generated code, so the
M4 builds use the soft-float ABI (no FPU context, same code as ``softfp``).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from elman.errors import ToolchainError

INSTALL_HINT = (
    "apt-get install -y --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi"
)

CPU_FLAGS: dict[str, tuple[str, ...]] = {
    "cortex-m0plus": ("-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"),
    "cortex-m4": ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft"),
    "cortex-m7": ("-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=soft"),
}
CPUS = tuple(CPU_FLAGS)
OPTS = ("O2", "Os")

COMMON_FLAGS = (
    "-std=c99",
    "-ffreestanding",
    "-ffunction-sections",
    "-fdata-sections",
    "-fno-common",
    "-Wall",
    "-Wextra",
    "-Werror",
)


@dataclass(frozen=True)
class Toolchain:
    """Paths of the cross tools (all from the same installation)."""

    gcc: Path
    size: Path | None

    def version(self) -> str:
        out = subprocess.run([str(self.gcc), "--version"], capture_output=True, text=True,
                             check=False)
        return out.stdout.splitlines()[0].strip() if out.stdout else "unknown"


def find_toolchain() -> Toolchain:
    """Locate ``arm-none-eabi-gcc``, or raise a ToolchainError that says how to install it."""
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        raise ToolchainError(
            "arm-none-eabi-gcc was not found on PATH; install the Arm cross compiler with: "
            + INSTALL_HINT
        )
    size = shutil.which("arm-none-eabi-size")
    return Toolchain(gcc=Path(gcc), size=Path(size) if size else None)


def check_cpu_opt(cpu: str, opt: str) -> None:
    """Raise a ToolchainError naming the accepted values on an unknown core or level."""
    if cpu not in CPU_FLAGS:
        raise ToolchainError(f"unknown cpu {cpu!r}; choose one of {', '.join(CPUS)}")
    if opt not in OPTS:
        raise ToolchainError(f"unknown optimization level {opt!r}; choose one of "
                             f"{', '.join(OPTS)}")


def compile_flags(cpu: str, opt: str) -> list[str]:
    """Compiler flags for one core and optimization level (``O2`` or ``Os``)."""
    check_cpu_opt(cpu, opt)
    return [*CPU_FLAGS[cpu], f"-{opt}", *COMMON_FLAGS]


def has_dsp(cpu: str) -> bool:
    """Whether the core has the DSP extension (``__ARM_FEATURE_DSP``: SMLAD, SXTB16)."""
    return cpu in ("cortex-m4", "cortex-m7")
