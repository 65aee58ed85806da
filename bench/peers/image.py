"""Peer images in elman's Cortex-M emulator harness, and their sizes from the linker map.

A peer's objects are linked with elman's own linker script
(``elman.firmware_codegen.arm.build.linker_script``: the same memory map, the same
``--gc-sections``, the emulator's buffers in harness sections of their own, so
they are not counted) and read back with ``read_image`` into an ``ArmImage`` that
elman's ``Machine`` runs. The image is then split by the linker map: every input
section the linker kept is attributed, by the object or archive member it came
from, to a part an embedded engineer budgets (framework, kernels, model, libc...),
in flash and in RAM.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elman.firmware_codegen.arm.build import (
    FLASH_LENGTH,
    FLASH_ORIGIN,
    RAM_LENGTH,
    RAM_ORIGIN,
    ArmImage,
    linker_script,
    read_image,
)
from elman.firmware_codegen.arm.machine import STACK_PAINT, Machine

HARNESS_SECTIONS = (".harness_text", ".harness_ram", ".stack")


class PeerBuildError(Exception):
    """A peer's code did not compile, link or run in the emulator."""


def run_tool(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
    if proc.returncode != 0:
        raise PeerBuildError(f"{what} failed:\n$ {' '.join(cmd)}\n"
                             f"{(proc.stderr or proc.stdout).strip()[-3000:]}")
    return proc.stdout


def link(linker: list[str], inputs: list[str], out_dir: Path, *, cpu: str, opt: str,
         entry_points: tuple[str, ...], libs: tuple[str, ...] = ("-lm", "-lgcc"),
         stack_bytes: int = 16 * 1024) -> ArmImage:
    """Link ``inputs`` (objects and archives) with elman's linker script into
    ``out_dir/image.elf`` (map in ``image.map``); ``linker`` is the compiler driver with
    the cpu flags; ``stack_bytes`` is the emulator's stack (keras2c needs more than
    elman's default 16 KiB: it copies its weights onto the stack). Refuses images that
    need startup code the emulator does not run."""
    ld = out_dir / "image.ld"
    ld.write_text(linker_script(stack_bytes), encoding="utf-8")
    elf = out_dir / "image.elf"
    run_tool([*linker, "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
              "-Wl,--gc-sections", f"-Wl,-T,{ld}", f"-Wl,-Map,{out_dir / 'image.map'}",
              "-Wl,--no-warn-rwx-segments",
              *[f"-Wl,--require-defined={e}" for e in entry_points],
              *inputs, *libs, "-o", str(elf)], f"linking {elf}")
    image = read_image(elf, cpu=cpu, opt=opt)
    ctors = [s for s in output_sections(out_dir / "image.map")
             if s[0] in (".init_array", ".preinit_array", ".ctors") and s[2]]
    if ctors:
        raise PeerBuildError(f"{elf} has static constructors ({ctors}); the emulator runs no "
                             "startup code")
    return image


def output_sections(map_path: Path) -> list[tuple[str, int, int]]:
    """(name, address, size) of every output section in a GNU ld map."""
    out = []
    for name, addr, size, _load in _output_section_lines(map_path.read_text()):
        out.append((name, addr, size))
    return out


_OUT = re.compile(r"^(\.\S+|\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)(\s+load address 0x[0-9a-f]+)?$")
_IN_ONE = re.compile(r"^ (\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
_IN_NAME = re.compile(r"^ (\S+)$")
_IN_REST = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
_FILL = re.compile(r"^ \*fill\*\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)")


def _output_section_lines(text: str):
    body = text.split("Linker script and memory map", 1)[-1]
    lines = body.splitlines()
    for i, line in enumerate(lines):
        m = _OUT.match(line)
        if m is None:
            # a long output-section name sits alone on its line, the numbers on the next
            if re.match(r"^\.\S+$", line) and i + 1 < len(lines):
                m2 = re.match(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)(\s+load address.*)?$",
                              lines[i + 1])
                if m2:
                    yield line, int(m2.group(1), 16), int(m2.group(2), 16), bool(m2.group(3))
            continue
        yield m.group(1), int(m.group(2), 16), int(m.group(3), 16), bool(m.group(4))


def map_contributions(map_path: Path) -> list[tuple[str, str, int, int]]:
    """(output section, source file, address, size) of every input section the linker
    placed, alignment padding included (given to the input before it)."""
    text = map_path.read_text().split("Linker script and memory map", 1)[-1]
    out: list[tuple[str, str, int, int]] = []
    section = ""
    pending: str | None = None
    for line in text.splitlines():
        m = _OUT.match(line)
        if m and not line.startswith(" "):
            section, pending = m.group(1), None
            continue
        if re.match(r"^\.\S+$", line):  # long output-section name alone on its line
            section, pending = line.strip(), None
            continue
        f = _FILL.match(line)
        if f:
            size = int(f.group(2), 16)
            if out and out[-1][0] == section:
                sec, src, addr, n = out[-1]
                out[-1] = (sec, src, addr, n + size)
            elif size:
                out.append((section, "*fill*", int(f.group(1), 16), size))
            continue
        m1 = _IN_ONE.match(line)
        if m1 and not m1.group(4).startswith("0x"):
            out.append((section, m1.group(4).strip(), int(m1.group(2), 16),
                        int(m1.group(3), 16)))
            pending = None
            continue
        mn = _IN_NAME.match(line)
        if mn and not line.startswith(" *"):
            pending = mn.group(1)
            continue
        mr = _IN_REST.match(line)
        if mr and pending is not None:
            out.append((section, mr.group(3).strip(), int(mr.group(1), 16),
                        int(mr.group(2), 16)))
            pending = None
    return [c for c in out if c[3] > 0]


def _in(addr: int, origin: int, length: int) -> bool:
    return origin <= addr < origin + length


def allocated_sections(elf: Path) -> set[str]:
    """Names of the sections that occupy memory on the target (not debug information)."""
    with open(elf, "rb") as f:
        return {s.name for s in ELFFile(f).iter_sections() if s["sh_flags"] & SH_FLAGS.SHF_ALLOC}


def size_split(map_path: Path, elf: Path,
               classify: Callable[[str], str]) -> dict[str, dict[str, int]]:
    """Bytes per part: ``{part: {"flash": n, "ram": n}}`` from the linker map;
    ``classify`` maps an input's file (``a.o`` or ``lib.a(member.o)``) to its part.
    Initialized data counts in flash (its load image) and in RAM. The emulator's
    harness sections and the stack are left out."""
    load_in_flash = {name for name, _addr, _size, load in
                     _output_section_lines(map_path.read_text()) if load}
    allocated = allocated_sections(elf)
    parts: dict[str, dict[str, int]] = {}
    for section, src, addr, size in map_contributions(map_path):
        if section in HARNESS_SECTIONS or section not in allocated:
            continue
        part = parts.setdefault(classify(src), {"flash": 0, "ram": 0})
        if _in(addr, FLASH_ORIGIN, FLASH_LENGTH):
            part["flash"] += size
        elif _in(addr, RAM_ORIGIN, RAM_LENGTH):
            part["ram"] += size
            if section in load_in_flash and section not in (".bss",):
                part["flash"] += size
    return dict(sorted(parts.items()))


def member_name(src: str) -> tuple[str, str]:
    """(archive or object path, member): ``lib.a(x.o)`` -> (lib.a, x.o); ``x.o`` -> (x.o, x.o)."""
    m = re.match(r"^(.*)\((.*)\)$", src)
    if m:
        return m.group(1), m.group(2)
    return src, Path(src).name


def classify_runtime(src: str) -> str | None:
    """The toolchain's own libraries: ``libc/libm/libgcc`` (and libstdc++), or None."""
    archive, _member = member_name(src)
    name = Path(archive).name
    if name.startswith(("libc", "libm", "libg", "libnosys", "libstdc++", "libsupc++")):
        return "libc/libm/libgcc"
    if src in ("linker stubs", "*fill*"):
        return "libc/libm/libgcc" if src == "*fill*" else "other"
    return None


def repaint_stack(m: Machine) -> None:
    """Paint the emulator's stack again, so the next high-water mark measures only the
    calls after this one (e.g. the steps, not the setup)."""
    lo, hi = m.image.stack_limit, m.image.stack_top
    m.write(lo, bytes([STACK_PAINT]) * (hi - lo))


def compile_c(gcc: str, flags: list[str], sources: list[Path], out_dir: Path) -> list[str]:
    """Compile C sources one by one into ``out_dir`` (object names keep the source's stem;
    a stem used twice gets its parent folder's name in front)."""
    objects = []
    seen: set[str] = set()
    for src in sources:
        stem = src.stem if src.stem not in seen else f"{src.parent.name}_{src.stem}"
        seen.add(stem)
        obj = out_dir / f"{stem}.o"
        run_tool([gcc, *flags, "-c", str(src), "-o", str(obj)], f"compiling {src.name}")
        objects.append(str(obj))
    return objects


def smallest_buffer(works: Callable[[int], bool], most: int) -> int:
    """The smallest size in [0, most] for which ``works`` holds (``works`` must hold for
    ``most`` and be monotone), by bisection."""
    if not works(most):
        raise PeerBuildError(f"does not work even with {most} bytes")
    lo, hi = 0, most  # works(hi) holds; find the first size that works
    while lo < hi:
        mid = (lo + hi) // 2
        if works(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi


def size_summary(split: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Flash and static RAM of a size split, in total and by part."""
    return {"flash": sum(p["flash"] for p in split.values()),
            "flash_split": {k: v["flash"] for k, v in split.items() if v["flash"]},
            "static": sum(p["ram"] for p in split.values()),
            "static_split": {k: v["ram"] for k, v in split.items() if v["ram"]}}


def run_converter(python: Path, script: Path, argv: list[str], what: str) -> dict[str, Any]:
    """Run a peer's converter script in its own Python environment; its last stdout line
    is a JSON object, returned. A failure raises with the end of its stderr."""
    proc = subprocess.run([str(python), str(script), *argv], capture_output=True, text=True,
                          check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise PeerBuildError(f"{what} failed ({python} {script.name}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])
