"""Each instruction of a linked image, from the toolchain's ``objdump``: the cycle model's input.

``instruction_costs(elf, cpu)`` maps every code address of the image to the
cycles the target's :class:`~elman.targets.cycles.CycleModel` gives its
instruction. Arm images are disassembled for the core's architecture
(``-m`` / ``-M``), since the linked image carries no attribute section; MVE
would otherwise read as coprocessor instructions.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from elman.targets.registry import get_target

from elman.errors import ToolchainError

_LINE = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
OBJDUMP_ARCH = {  # the objdump machine of a core, where its default would be wrong
    "cortex-m55": ("-m", "armv8.1-m.main"),
}


def disassemble(elf: Path | str, cpu: str) -> list[tuple[int, str, str]]:
    """(address, mnemonic, operands) of every instruction in the image's code sections."""
    target = get_target(cpu)
    objdump = shutil.which(target.tool_prefix + "objdump")
    if objdump is None:
        raise ToolchainError(f"{target.tool_prefix}objdump was not found on PATH; install it "
                             f"with: {target.install_hint}")
    extra = OBJDUMP_ARCH.get(cpu, ())
    proc = subprocess.run([objdump, "-d", "--no-show-raw-insn", *extra, str(elf)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolchainError(f"{Path(objdump).name} failed on {elf}: {proc.stderr.strip()}")
    out = []
    for line in proc.stdout.splitlines():
        m = _LINE.match(line)
        if m and not m.group(2).startswith("."):
            out.append((int(m.group(1), 16), m.group(2), m.group(3)))
    return out


def instruction_costs(elf: Path | str, cpu: str) -> dict[int, float]:
    """Address -> cycles of its instruction under ``cpu``'s cycle model."""
    model = get_target(cpu).cycles
    return {a: model.instruction_cycles(mn, ops) for a, mn, ops in disassemble(elf, cpu)}
