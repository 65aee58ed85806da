"""Bare-metal ELF images of generated C for any registered core, and their flash/RAM sizes.

An image holds the model's C files plus an optional *harness* (C that only
defines input/output buffers for the emulator, or a ``main`` for a board).
The linker script keeps the harness in sections of its own, so the sizes
reported are the model's alone, split the way an embedded engineer budgets:

- ``code``: ``.text`` (the step's functions, with the libgcc helpers it calls),
- ``weights``: ``.rodata`` (weights, bias, multipliers, lookup tables),
- ``data`` / ``bss``: the model's RAM (state); ``data`` also occupies flash.

The stack a step uses is measured in the emulator (``emulate.py``), not here.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection
from elman.firmware_codegen.arm.toolchain import compile_flags, find_toolchain
from elman.targets import get_target

from elman.errors import ToolchainError

FLASH_ORIGIN = 0x0000_0000
FLASH_LENGTH = 2 * 1024 * 1024
RAM_ORIGIN = 0x2000_0000
RAM_LENGTH = 512 * 1024
STACK_BYTES = 16 * 1024
HARNESS_TAG = "armharness"  # object files whose name contains this are the harness


def linker_script(stack_bytes: int = STACK_BYTES) -> str:
    """The emulator's linker script, with ``stack_bytes`` of stack (the harness sections
    first, then the model's code, tables and RAM, then the stack)."""
    return f"""\
/* elman: image for the emulator; the harness lives in sections of its own. */
MEMORY
{{
  FLASH (rx)  : ORIGIN = 0x{FLASH_ORIGIN:08x}, LENGTH = 0x{FLASH_LENGTH:x}
  RAM   (rwx) : ORIGIN = 0x{RAM_ORIGIN:08x}, LENGTH = 0x{RAM_LENGTH:x}
}}
SECTIONS
{{
  .harness_text : {{ KEEP(*{HARNESS_TAG}*.o(.text* .rodata*)) }} > FLASH
  .harness_ram (NOLOAD) : {{ . = ALIGN(8); KEEP(*{HARNESS_TAG}*.o(.bss* .data* COMMON)) }} > RAM
  .text : {{ *(.text*) }} > FLASH
  .ARM.exidx : {{ *(.ARM.exidx*) }} > FLASH
  .rodata : {{ . = ALIGN(4); *(.rodata*) *(.srodata*) }} > FLASH
  .data : {{ . = ALIGN(4); *(.data*) *(.sdata*) }} > RAM AT > FLASH
  .bss (NOLOAD) : {{ . = ALIGN(4); *(.bss*) *(.sbss*) *(COMMON) }} > RAM
  .stack (NOLOAD) :
  {{ . = ALIGN(8); __stack_limit = .; . += {stack_bytes}; __stack_top = .; }} > RAM
  /DISCARD/ : {{ *(.comment) *(.ARM.attributes) *(.riscv.attributes) *(.note*) }}
}}
"""


LINKER_SCRIPT = linker_script()


@dataclass(frozen=True)
class ImageSizes:
    """Bytes of the model in the image (harness excluded)."""

    code: int  # .text
    weights: int  # .rodata: weights, bias, multipliers, tables
    data: int  # initialized RAM (copied from flash at boot)
    bss: int  # zero-initialized RAM
    other_flash: int = 0  # e.g. .ARM.exidx of libgcc helpers

    @property
    def flash(self) -> int:
        return self.code + self.weights + self.data + self.other_flash

    @property
    def ram(self) -> int:
        return self.data + self.bss

    def to_dict(self) -> dict[str, int]:
        return {"code": self.code, "weights_tables": self.weights, "data": self.data,
                "bss": self.bss, "other_flash": self.other_flash, "flash": self.flash,
                "ram": self.ram}


@dataclass(frozen=True)
class Symbol:
    name: str
    address: int
    size: int
    is_function: bool


@dataclass(frozen=True)
class ArmImage:
    """A linked ELF for one core (a target's name) and optimization level."""

    elf: Path
    cpu: str
    opt: str
    sizes: ImageSizes
    symbols: dict[str, Symbol]
    stack_limit: int
    stack_top: int


def build_image(sources: dict[str, str], out_dir: Path | str, *, cpu: str, opt: str,
                harness: str = "", entry_points: tuple[str, ...] = (),
                defines: tuple[str, ...] = (), linker: str = LINKER_SCRIPT) -> ArmImage:
    """Compile ``sources`` (file name -> text; ``.h`` files are only written) and the
    harness C (may be empty) into ``out_dir/model.elf`` for ``cpu`` at ``-O<opt>``.

    ``entry_points`` are the functions the image must keep (everything else that
    they do not reach is removed by ``--gc-sections``); ``linker`` is the linker script
    (the emulator's by default; a whole image for QEMU has its own)."""
    target = get_target(cpu)
    tc = find_toolchain(cpu)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        if HARNESS_TAG in name:
            raise ValueError(f"source file names must not contain {HARNESS_TAG!r}: {name}")
        (out / name).write_text(text, encoding="utf-8")
    c_files = [out / n for n in sorted(sources) if n.endswith(".c")]
    if harness:
        h = out / f"{HARNESS_TAG}.c"
        h.write_text(harness, encoding="utf-8")
        c_files.append(h)
    ld = out / "image.ld"
    ld.write_text(linker, encoding="utf-8")
    flags = compile_flags(cpu, opt) + [f"-D{d}" for d in defines] + [f"-I{out}"]
    objects = []
    for c in c_files:
        obj = c.with_suffix(".o")
        _run([str(tc.gcc), *flags, "-fstack-usage", "-c", str(c), "-o", str(obj)], c.name,
             target.compiler)
        objects.append(str(obj))
    elf = out / "model.elf"
    _run([str(tc.gcc), *compile_flags(cpu, opt), *target.link_flags,
          "-Wl,--gc-sections", f"-Wl,-T,{ld}", f"-Wl,-Map,{out / 'model.map'}",
          "-Wl,--no-warn-rwx-segments", *[f"-Wl,--require-defined={e}" for e in entry_points],
          *objects, *target.libs, "-o", str(elf)], "link", target.compiler)
    return read_image(elf, cpu=cpu, opt=opt)


def read_image(elf: Path, *, cpu: str, opt: str) -> ArmImage:
    """Sizes and symbols of a linked image made by :func:`build_image`."""
    with open(elf, "rb") as f:
        ef = ELFFile(f)
        sec = {s.name: s["sh_size"] for s in ef.iter_sections()}
        symtab = ef.get_section_by_name(".symtab")
        assert isinstance(symtab, SymbolTableSection)
        symbols: dict[str, Symbol] = {}
        for s in symtab.iter_symbols():
            kind = s["st_info"]["type"]
            if s.name and kind in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE"):
                symbols[s.name] = Symbol(s.name, s["st_value"] & ~1, s["st_size"],
                                         kind == "STT_FUNC")
    sizes = ImageSizes(code=sec.get(".text", 0), weights=sec.get(".rodata", 0),
                       data=sec.get(".data", 0), bss=sec.get(".bss", 0),
                       other_flash=sec.get(".ARM.exidx", 0))
    return ArmImage(elf=elf, cpu=cpu, opt=opt, sizes=sizes, symbols=symbols,
                    stack_limit=symbols["__stack_limit"].address,
                    stack_top=symbols["__stack_top"].address)


def _run(cmd: list[str], what: str, compiler: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolchainError(f"{compiler} failed on {what}:\n{proc.stderr.strip()}")
