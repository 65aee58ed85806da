"""Run the generated step on the Arduino Uno's ATmega328P in simavr, with exact cycles.

The model's C and a small harness (``firmware_codegen/templates/avr/harness.c.j2``) are
built by ``avr-gcc -mmcu=atmega328p`` (8-bit AVR, 32 KB flash, 2 KB RAM, 16-bit ``int``);
weights and tables stay in flash (``PROGMEM``, read with LPM through the ``<P>_READ_*``
macros of ``<prefix>_weights.h``). elman's simavr runner
(``templates/avr/simavr_runner.c.j2``, compiled once against Debian's ``libsimavr-dev``)
feeds the inputs through an I/O register, collects every step's state and outputs, and
counts the CPU cycles and the executed instructions of each step exactly: simavr charges
every instruction the cycles of the AVR instruction set manual, so on this core the cycles
are measured, not estimated. The stack a step uses is painted and scanned on the core.

Sizes are the model's alone, from the linker map: its kept sections (code, the PROGMEM
weights and tables, RAM data and bss) plus the libgcc routines the image pulls in (32/64-bit
multiplies and shifts of the requantization). A model that does not fit the part (flash or
RAM) is one :class:`ModelDoesNotFit` error, before anything runs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from elman.firmware_codegen.arm.build import ImageSizes
from elman.firmware_codegen.arm.toolchain import compile_flags, find_toolchain
from elman.quantize.ir import QuantizedModel
from elman.runtime.outputs import StepOutputs
from elman.targets.registry import SIMAVR_HINT, get_target

from elman.errors import ToolchainError

STRICT = ("-Wpedantic", "-Wconversion", "-Wshadow")
HARNESS = "unoharness.c"
TIMEOUT_S = 3600
# What the estimate adds to the weights: the step's code and tables (about 4.5 KB for the
# tflm profile, 6 KB for tflite) and, in RAM, the harness and the deepest stack of a step.
CODE_ALLOWANCE = 7 * 1024
RAM_ALLOWANCE = 400
SIMAVR_HEADER = Path("/usr/include/simavr/sim_avr.h")
TOO_BIG = ("will not fit in region", "is too large", "overflowed by")


INT16_UNSUPPORTED = ("the int16 state (--state int16) is not built for the ATmega328P yet: its "
                     "16x8 kernels assume a 32-bit int (1 << 23 in the int16 TANH) and the "
                     "AVR matrix-vector kernel multiplies int8 vectors only")


class ModelDoesNotFit(ToolchainError):
    """The model needs more flash or RAM than the part has."""


def estimated_footprint(ir: QuantizedModel) -> tuple[int, int]:
    """(flash, RAM) bytes the model needs on the ATmega328P, estimated from its shape
    (generous: the build measures the real figures)."""
    weights = ir.macs_per_step + 4 * (ir.state_bytes + ir.output_dim)
    if ir.embedding is not None:
        weights += ir.vocab_size * ir.layer_units[0]
    ram = ir.state_bytes + ir.input_dim + ir.output_dim + RAM_ALLOWANCE
    return weights + CODE_ALLOWANCE, ram


def available(cpu: str = "atmega328p") -> bool:
    """Whether this machine has the target's compiler and simavr's library headers."""
    return shutil.which(get_target(cpu).compiler) is not None and SIMAVR_HEADER.exists()


def fits(ir: QuantizedModel, cpu: str = "atmega328p", *, profile: str = "tflm",
         opt: str = "O2") -> bool:
    """Whether the model fits ``cpu``'s flash and RAM (always, for a target without stated
    limits): its weights by the estimate, then the real image of ``profile`` at ``opt``
    (linked here: its code grows with layers and profile). False where the tools are missing."""
    target = get_target(cpu)
    if target.flash_bytes is None:
        return True
    if ir.state_bits not in target.state_bits or not available(cpu):
        return False  # see INT16_UNSUPPORTED
    flash, ram = estimated_footprint(ir)
    if flash - CODE_ALLOWANCE > target.flash_bytes or ram > (target.ram_bytes or ram):
        return False
    with tempfile.TemporaryDirectory(prefix="elman-avr-fit-") as tmp:
        try:
            build_uno(ir, Path(tmp), profile=profile, prefix="elman", opt=opt, cpu=cpu)
        except ModelDoesNotFit:
            return False
    return True


def build_uno(ir: QuantizedModel, out: Path, *, profile: str, prefix: str, opt: str,
              cpu: str = "atmega328p") -> tuple[Path, ImageSizes, int]:
    """Compile the model and the harness into ``out/uno.elf``: the ELF, the model's sizes, and
    the static RAM of the whole image (harness included: what the stack has left)."""
    from elman.firmware_codegen.arm.emulate import step_sources
    from elman.firmware_codegen.generate import CModel, template_environment

    target = get_target(cpu)
    gcc = str(find_toolchain(cpu).gcc)
    files = step_sources(ir, prefix=prefix, profile=profile, cpu=cpu)
    files.pop(f"{prefix}_io.c", None)  # the float helpers: not part of a step
    model = CModel(ir, prefix, profile, ir.source_sha256 or "unknown")
    files[HARNESS] = template_environment().get_template("avr/harness.c.j2").render(m=model)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    flags = [*compile_flags(cpu, opt), *STRICT, f"-I{out}"]
    objects = []
    for name in sorted(n for n in files if n.endswith(".c")):
        obj = out / (name[:-2] + ".o")
        _check([gcc, *flags, "-c", str(out / name), "-o", str(obj)], name)
        objects.append(str(obj))
    elf, map_file = out / "uno.elf", out / "uno.map"
    _check([gcc, *flags, *objects, "-Wl,--gc-sections", f"-Wl,-Map,{map_file}",
            *target.libs, "-o", str(elf)], "the image")
    sizes = model_sizes(map_file.read_text(encoding="utf-8", errors="replace"))
    text, data, bss = _elf_sizes(elf, target)
    if target.flash_bytes is not None and text + data > target.flash_bytes:
        raise ModelDoesNotFit(f"the model does not fit the {target.title}: its image needs "
                              f"{text + data} bytes of flash, the part has "
                              f"{target.flash_bytes}")
    return elf, sizes, data + bss


_INPUT_SECTION = re.compile(
    r"^ (\.[\w.$-]+)\s*\n?\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S.*)$", re.MULTILINE)


def model_sizes(map_text: str) -> ImageSizes:
    """The model's bytes in a linked AVR image, from its linker map: the kept input sections
    of the model's objects (not the harness's, not the C runtime's) and the libgcc routines."""
    kept = map_text.split("Linker script and memory map", 1)[-1]
    code = weights = data = bss = 0
    for name, size_hex, source in _INPUT_SECTION.findall(kept):
        size = int(size_hex, 16)
        source = source.strip()
        if ".a(" in source:  # libgcc's (or libc's) routines the image pulls in
            if name.startswith(".text"):
                code += size
            continue
        if not source.endswith(".o") or source.endswith(HARNESS[:-2] + ".o") or \
                "/avr/lib/" in source or "crt" in Path(source).name:
            continue
        if name.startswith(".progmem"):
            weights += size
        elif name.startswith(".text"):
            code += size
        elif name.startswith((".data", ".rodata")):  # RAM on AVR, copied from flash
            data += size
        elif name.startswith(".bss"):
            bss += size
    return ImageSizes(code=code, weights=weights, data=data, bss=bss)


def _elf_sizes(elf: Path, target) -> tuple[int, int, int]:
    size = shutil.which(target.tool_prefix + "size")
    if size is None:
        raise ToolchainError(f"{target.tool_prefix}size was not found; install it with: "
                             f"{target.install_hint}")
    line = _check([size, str(elf)], "avr-size").splitlines()[1]
    text, data, bss = (int(v) for v in line.split()[:3])
    return text, data, bss


def _commands(ir: QuantizedModel, inputs: np.ndarray, tokens: bool,
              head_on_last_step: bool) -> bytes:
    batch, steps = inputs.shape[:2]
    with_head = ir.head is not None
    little = np.dtype(ir.state_dtype).newbyteorder("<")
    out = bytearray()
    for n in range(batch):
        out += b"r"
        for t in range(steps):
            head = with_head and (not head_on_last_step or t == steps - 1)
            if tokens:
                out += (b"u" if head else b"t") + int(inputs[n, t]).to_bytes(2, "little")
            else:
                out += (b"y" if head else b"s") + inputs[n, t].astype(little).tobytes()
    return bytes(out + b"q")


def run_simavr(ir: QuantizedModel, inputs: np.ndarray, *, tokens: bool, profile: str,
               cpu: str, opt: str, prefix: str, work_dir: Path | str | None = None,
               head_on_last_step: bool = False):
    """Run the model's C over ``inputs`` (int8/int16 (B, T, D), or token ids (B, T)) on the
    simavr-emulated ``cpu``: an :class:`EmulatedRun` with exact instructions and cycles per
    step. ``head_on_last_step``: ``y`` is NULL until each sequence's last step (its ``y``
    rows before that stay 0)."""
    from elman.firmware_codegen.arm.emulate import EmulatedRun

    target = get_target(cpu)
    batch, steps = inputs.shape[:2]
    if ir.state_bits not in target.state_bits:
        raise ToolchainError(INT16_UNSUPPORTED)
    weights = estimated_footprint(ir)[0] - CODE_ALLOWANCE
    if target.flash_bytes is not None and weights > target.flash_bytes:
        raise ModelDoesNotFit(f"the model does not fit the {target.title}: its weights alone "
                              f"need {weights} bytes of flash, the part has "
                              f"{target.flash_bytes}")
    if ir.embedding is None and tokens:
        raise ValueError("token ids need a text model with an embedding")
    with tempfile.TemporaryDirectory(prefix="elman-avr-") as tmp:
        work = Path(work_dir) if work_dir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        elf, sizes, image_ram = build_uno(ir, work, profile=profile, prefix=prefix, opt=opt,
                                          cpu=cpu)
        printed, cycles, counts = _simulate(elf, _commands(ir, inputs, tokens,
                                                           head_on_last_step),
                                            work / "out.bin", target.title)
    dtype = np.dtype(ir.state_dtype).newbyteorder("<")
    width_h, width_y = ir.state_bytes * dtype.itemsize, ir.output_dim * dtype.itemsize
    body, stack = printed[:-2], int.from_bytes(printed[-2:], "little")
    h = np.zeros((batch, steps, ir.state_bytes), ir.state_dtype)
    y = np.zeros((batch, steps, ir.output_dim), ir.state_dtype) if ir.head is not None \
        else None
    at = 0
    for n in range(batch):
        for t in range(steps):
            h[n, t] = np.frombuffer(body[at:at + width_h], dtype)
            at += width_h
            if y is not None and (not head_on_last_step or t == steps - 1):
                y[n, t] = np.frombuffer(body[at:at + width_y], dtype)
                at += width_y
    if at != len(body) or len(cycles) != batch * steps or len(counts) != len(cycles):
        raise ToolchainError(f"the {target.title} harness returned {len(body)} bytes and "
                             f"{len(cycles)} steps, expected {at} and {batch * steps}")
    if target.ram_bytes is not None and image_ram + stack > target.ram_bytes:
        raise ModelDoesNotFit(f"the model does not fit the {target.title}: static RAM "
                              f"{image_ram} bytes + a step's stack {stack} > "
                              f"{target.ram_bytes}")
    n_steps = max(len(cycles), 1)
    return EmulatedRun(
        outputs=StepOutputs(h=h, y=y), cpu=cpu, opt=opt, profile=profile,
        macs_per_step=ir.macs_per_step,
        instructions_per_step=sum(counts) / n_steps,
        instructions_min=min(counts, default=0), instructions_max=max(counts, default=0),
        matvec_instructions_per_step=None, stack_bytes=stack, sizes=sizes.to_dict(),
        cycles_per_step=sum(cycles) / n_steps, cycles_max=max(cycles, default=0),
        cycles_exact=True)


def _simulate(elf: Path, commands: bytes, output: Path, title: str
              ) -> tuple[bytes, list[int], list[int]]:
    runner = simavr_runner()
    try:
        proc = subprocess.run([str(runner), str(elf), str(output)], input=commands,
                              capture_output=True, check=False, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:  # subprocess.run kills the runner (no child of its own)
        raise ToolchainError(f"the {title} image did not finish in simavr within "
                             f"{TIMEOUT_S} s") from None
    report = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise ToolchainError(f"the {title} image failed in simavr:\n{report.strip()[-2000:]}")
    numbers = {}
    for line in report.splitlines():
        key, _, values = line.partition(":")
        if key in ("steps", "instructions"):
            numbers[key] = [int(v) for v in values.split()]
    return output.read_bytes(), numbers.get("steps", []), numbers.get("instructions", [])


def simavr_runner() -> Path:
    """elman's simavr runner, compiled once per content (cached like the host harnesses)."""
    from elman.firmware_codegen.generate import template_environment

    env = template_environment()
    source = env.loader.get_source(env, "avr/simavr_runner.c.j2")[0]  # type: ignore[union-attr]
    if not SIMAVR_HEADER.exists():
        raise ToolchainError(f"simavr's headers were not found; install them with: "
                             f"{SIMAVR_HINT}")
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    cache = Path(os.environ.get("ELMAN_HOST_CACHE", Path(tempfile.gettempdir()) /
                                f"elman-simavr-{os.getuid()}"))
    exe = cache / f"simavr-runner-{key}"
    if exe.exists():
        return exe
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        src = Path(tmp, "runner.c")
        src.write_text(source)
        _check([shutil.which("cc") or "cc", "-O2", "-o", str(Path(tmp, "runner")), str(src),
                "-lsimavr"], "the simavr runner")
        os.replace(Path(tmp, "runner"), exe)
    return exe


def _check(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 and any(t in proc.stderr for t in TOO_BIG):
        raise ModelDoesNotFit(f"the model does not fit the ATmega328P's 32 KB of flash "
                              f"({what}): {proc.stderr.strip()[-500:]}")
    if proc.returncode != 0:
        raise ToolchainError(f"building {what} for the ATmega328P failed:\n{' '.join(cmd)}\n"
                             f"{proc.stderr[-4000:]}")
    return proc.stdout
