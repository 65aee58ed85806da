"""The Arduino Uno's ATmega328P: the generated C built with avr-gcc and run in simavr.

``run_avr(ir, x_q)`` builds the model's C with a small harness
(``templates/avr/harness.c.j2``) for the ATmega328P (8-bit AVR, 32 KB flash, 2 KB RAM,
16-bit ``int``), runs it in simavr through elman's runner (``templates/avr/simavr_runner.c``,
compiled against Debian's ``libsimavr-dev``: it feeds the inputs, collects every step's
state and outputs, and counts the CPU cycles of each step exactly) and returns the outputs
and the measurements: flash and static RAM of the model (``avr-size``), the deepest stack of
a step (painted) and cycles per step. Weights and tables stay in flash (``PROGMEM``, read
with LPM through the ``<P>_READ_*`` macros of ``<prefix>_weights.h``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from elman.firmware_codegen.generate import CModel, generate_c, template_environment
from elman.quantize.ir import QuantizedModel
from elman.runtime.outputs import StepOutputs

from elman.errors import DataError, ToolchainError

MCU = "atmega328p"
CLOCK_HZ = 16_000_000  # an Arduino Uno
FLASH_BYTES = 32 * 1024
RAM_BYTES = 2 * 1024
AVR_HINT = "apt-get install -y --no-install-recommends gcc-avr avr-libc"
SIMAVR_HINT = "apt-get install -y --no-install-recommends libsimavr-dev"
AVR_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wshadow",
             "-Werror", "-ffunction-sections", "-fdata-sections")


@dataclass(frozen=True)
class AvrRun:
    """What the emulated Uno computed and what it cost."""

    outputs: StepOutputs
    cycles_per_step: float  # mean over every step run
    max_cycles_per_step: int
    stack_bytes: int  # deepest stack below the harness's main during a step
    flash_bytes: int  # the model's code and constants (text + data of its object)
    static_ram_bytes: int  # the model's own data + bss (0: the state is the caller's)
    opt: str

    @property
    def microseconds_per_step(self) -> float:
        return self.cycles_per_step / CLOCK_HZ * 1e6


def run_avr(ir: QuantizedModel, x_q: np.ndarray, *, profile: str = "tflm",
            prefix: str = "elman", opt: str = "Os",
            head_on_last_step: bool = False) -> AvrRun:
    """Run the generated C on an emulated ATmega328P over int8 inputs (B, T, input_dim)."""
    x_q = np.asarray(x_q)
    if x_q.ndim != 3 or x_q.shape[2] != ir.input_dim or x_q.dtype != np.int8:
        raise DataError(f"x_q must be int8 (batch, steps, {ir.input_dim}), got "
                        f"{x_q.dtype} {x_q.shape}")
    b, t = x_q.shape[:2]
    with_head = ir.head is not None
    commands = bytearray()
    for n in range(b):
        commands += b"r"
        for step in range(t):
            head = with_head and (not head_on_last_step or step == t - 1)
            commands += (b"y" if head else b"s") + x_q[n, step].tobytes()
    commands += b"q"
    with tempfile.TemporaryDirectory(prefix="elman-avr-") as tmp:
        elf, flash, static_ram = build_avr(ir, Path(tmp), profile=profile, prefix=prefix,
                                           opt=opt)
        printed, cycles = _simulate(elf, bytes(commands), Path(tmp) / "out.bin")
    width_h, width_y = ir.state_bytes, ir.output_dim
    body, stack = printed[:-2], int.from_bytes(printed[-2:], "little")
    h = np.zeros((b, t, width_h), np.int8)
    y = np.zeros((b, t, width_y), np.int8) if with_head else None
    at = 0
    for n in range(b):
        for step in range(t):
            h[n, step] = np.frombuffer(body[at:at + width_h], np.int8)
            at += width_h
            if y is not None and (not head_on_last_step or step == t - 1):
                y[n, step] = np.frombuffer(body[at:at + width_y], np.int8)
                at += width_y
    if at != len(body) or len(cycles) != b * t:
        raise ToolchainError(f"the AVR harness returned {len(body)} bytes and {len(cycles)} "
                             f"steps, expected {at} and {b * t}")
    return AvrRun(StepOutputs(h=h, y=y), float(np.mean(cycles)), int(max(cycles)), stack,
                  flash, static_ram, opt)


def build_avr(ir: QuantizedModel, out: Path, *, profile: str = "tflm", prefix: str = "elman",
              opt: str = "Os") -> tuple[Path, int, int]:
    """Compile the model and the harness for the ATmega328P into ``out``: the ELF, and the
    model object's flash bytes (text + data) and static RAM bytes (data + bss)."""
    gcc = _tool("avr-gcc", AVR_HINT)
    files = generate_c(ir, prefix=prefix, profile=profile)
    model = CModel(ir, prefix, profile, ir.source_sha256 or "unknown")
    files["harness.c"] = template_environment().get_template("avr/harness.c.j2").render(m=model)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    flags = [f"-mmcu={MCU}", f"-{opt}", *AVR_FLAGS, f"-I{out}"]
    obj = out / f"{prefix}_model.o"
    _check([gcc, *flags, "-c", str(out / f"{prefix}_model.c"), "-o", str(obj)], "the model")
    elf = out / "uno.elf"
    _check([gcc, *flags, str(out / "harness.c"), str(obj), "-Wl,--gc-sections", "-o", str(elf)],
           "the harness")
    text, data, bss = _sizes(obj)
    return elf, text + data, data + bss


def _sizes(path: Path) -> tuple[int, int, int]:
    size = _tool("avr-size", AVR_HINT)
    lines = _check([size, str(path)], "avr-size").splitlines()
    text, data, bss = (int(v) for v in lines[1].split()[:3])
    return text, data, bss


def _simulate(elf: Path, commands: bytes, output: Path) -> tuple[bytes, list[int]]:
    runner = simavr_runner()
    proc = subprocess.run([str(runner), str(elf), str(output)], input=commands,
                          capture_output=True, check=False, timeout=3600)
    report = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise ToolchainError(f"the firmware failed in simavr:\n{report.strip()}")
    cycles = [int(v) for v in report.split("steps:", 1)[1].split()] if "steps:" in report else []
    return output.read_bytes(), cycles


def simavr_runner() -> Path:
    """elman's simavr runner, compiled once per content (cached like the host harnesses)."""
    source = template_environment().loader.get_source(  # type: ignore[union-attr]
        template_environment(), "avr/simavr_runner.c.j2")[0]
    if not Path("/usr/include/simavr/sim_avr.h").exists():
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


def _tool(name: str, hint: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ToolchainError(f"{name} was not found on PATH; install it with: {hint}")
    return found


def _check(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolchainError(f"building {what} for the {MCU} failed:\n{' '.join(cmd)}\n"
                             f"{proc.stderr[-4000:]}")
    return proc.stdout
