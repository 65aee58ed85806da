"""The cross toolchains: where they are, and the flags per core (from ``elman.targets``).

Every build is freestanding C99 (no startup files, no heap, no stdio), with one
section per function and per object so that ``--gc-sections`` keeps only what
the step reaches. Floating point is never used by the generated code, so the
Arm builds use the soft-float ABI (no FPU context, same code as ``softfp``),
except the Cortex-M55, whose MVE code needs the hard-float ABI.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from elman.targets import TARGETS, get_target

from elman.errors import ToolchainError

INSTALL_HINT = TARGETS["cortex-m4"].install_hint

# core -> its flags (kept for the peers' benchmarks, which build their own C the same way)
CPU_FLAGS: dict[str, tuple[str, ...]] = {name: t.flags for name, t in TARGETS.items()}
CPUS = tuple(TARGETS)
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

    def tool(self, name: str) -> Path:
        """A binutils program of the same installation (``objdump``, ``size``)."""
        return self.gcc.with_name(self.gcc.name[: -len("gcc")] + name)


def find_toolchain(cpu: str = "cortex-m4") -> Toolchain:
    """Locate the cross gcc of ``cpu``'s target, or raise a ToolchainError that says how to
    install it."""
    target = get_target(cpu)
    gcc = shutil.which(target.compiler)
    if gcc is None:
        raise ToolchainError(
            f"{target.compiler} was not found on PATH; install the {target.title} cross "
            f"compiler with: {target.install_hint}"
        )
    size = shutil.which(target.tool_prefix + "size")
    return Toolchain(gcc=Path(gcc), size=Path(size) if size else None)


def check_cpu_opt(cpu: str, opt: str) -> None:
    """Raise a ToolchainError naming the accepted values on an unknown core or level."""
    get_target(cpu)
    if opt not in OPTS:
        raise ToolchainError(f"unknown optimization level {opt!r}; choose one of "
                             f"{', '.join(OPTS)}")


def compile_flags(cpu: str, opt: str) -> list[str]:
    """Compiler flags for one core and optimization level (``O2`` or ``Os``)."""
    check_cpu_opt(cpu, opt)
    return [*get_target(cpu).flags, f"-{opt}", *COMMON_FLAGS]

