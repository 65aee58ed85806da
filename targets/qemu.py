"""Run the generated step on a core QEMU emulates (the Cortex-M55 with Helium), counted.

unicorn has no Armv8.1-M core, so the Cortex-M55 runs a whole image under
``qemu-system-arm -M mps3-an547``: a vector table and a reset handler that
grants CP10/CP11 in CPACR (MVE and the FPU are off at reset), the model's
inputs embedded in the image, and a loop that calls ``<prefix>_step`` for
every step of every sequence and prints the state and outputs over
semihosting, then the stack the steps used (painted and scanned on the core).

Instructions are counted exactly from QEMU's execution trace: with
``-singlestep`` every translation block is one instruction and
``-d exec,nochain`` logs every block executed, restricted by ``-dfilter`` to
the model's code and two marker functions the harness calls just before and
after each step. Each traced instruction between the markers is one executed
instruction of that step (its PC also gives per-function attribution, the
cycle model's instruction classes, and the taken transfers). The trace is read
from a FIFO while QEMU runs, so no trace file is stored. The count agrees
exactly with unicorn's on the same Cortex-M4 code (``tests/test_targets_qemu.py``).
"""

from __future__ import annotations

import bisect
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np
from elman.firmware_codegen.arm.build import HARNESS_TAG, ArmImage, build_image
from elman.quantize.ir import QuantizedModel
from elman.runtime.outputs import StepOutputs
from elman.targets.disassembly import disassemble
from elman.targets.registry import QEMU_HINT, get_target

from elman.errors import ToolchainError

ITCM, ITCM_BYTES = 0x0000_0000, 512 * 1024  # mps3-an547: code and constants
SRAM, SRAM_BYTES = 0x0100_0000, 2 * 1024 * 1024  # the harness's inputs
DTCM, DTCM_BYTES = 0x2000_0000, 512 * 1024  # state, stack
STACK_BYTES = 16 * 1024
STACK_PAINT = 0xA5
TIMEOUT_S = 900


def linker_script() -> str:
    """The QEMU image: vectors first, the harness in sections of its own (its inputs in SRAM),
    then the model's code, tables and RAM as in the unicorn images."""
    return f"""\
/* elman: whole image for qemu-system-arm; the harness lives in sections of its own. */
MEMORY
{{
  FLASH (rx)  : ORIGIN = 0x{ITCM:08x}, LENGTH = 0x{ITCM_BYTES:x}
  BULK  (rw)  : ORIGIN = 0x{SRAM:08x}, LENGTH = 0x{SRAM_BYTES:x}
  RAM   (rwx) : ORIGIN = 0x{DTCM:08x}, LENGTH = 0x{DTCM_BYTES:x}
}}
SECTIONS
{{
  .vectors : {{ KEEP(*(.vectors)) }} > FLASH
  .harness_text : {{ KEEP(*{HARNESS_TAG}*.o(.text*)) }} > FLASH
  .harness_data : {{ KEEP(*{HARNESS_TAG}*.o(.rodata* .data*)) }} > BULK
  .harness_ram (NOLOAD) : {{ . = ALIGN(8); KEEP(*{HARNESS_TAG}*.o(.bss* COMMON)) }} > RAM
  .text : {{ *(.text*) }} > FLASH
  .ARM.exidx : {{ *(.ARM.exidx*) }} > FLASH
  .rodata : {{ . = ALIGN(4); *(.rodata*) }} > FLASH
  .data : {{ . = ALIGN(4); __data_start = .; *(.data*) . = ALIGN(4); __data_end = .; }}
    > RAM AT > FLASH
  __data_load = LOADADDR(.data);
  .bss (NOLOAD) :
  {{ . = ALIGN(4); __bss_start = .; *(.bss*) *(COMMON) . = ALIGN(4); __bss_end = .; }} > RAM
  .stack (NOLOAD) :
  {{ . = ALIGN(8); __stack_limit = .; . += {STACK_BYTES}; __stack_top = .; }} > RAM
  /DISCARD/ : {{ *(.comment) *(.ARM.attributes) *(.note*) }}
}}
"""


def _c_bytes(values: np.ndarray) -> str:
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)] or ["0"]
    return ",\n".join(", ".join(flat[i:i + 24]) for i in range(0, len(flat), 24))


def harness_c(ir: QuantizedModel, inputs: np.ndarray, *, tokens: bool, prefix: str) -> str:
    """main(): every step of every sequence, each printed as hex (state, then outputs)."""
    batch, steps = inputs.shape[:2]
    out_dim, units = ir.output_dim, ir.state_bytes
    ctype, width = ("int8_t", 1) if ir.state_bits == 8 else ("int16_t", 2)  # bytes per value
    y_arg = "y" if out_dim else "NULL"
    if tokens:
        table = f"const uint16_t armharness_in[] = {{\n{_c_bytes(inputs)}\n}};"
        call = (f"        if ({prefix}_step_token(&armharness_state, armharness_in[i], {y_arg})"
                " != 0) {\n            armharness_exit(1);\n        }")
    else:
        table = (f"const {ctype} armharness_in[] __attribute__((aligned(4))) = "
                 f"{{\n{_c_bytes(inputs)}\n}};")
        call = (f"        {prefix}_step(&armharness_state, armharness_in + i * {ir.input_dim}, "
                f"{y_arg});")
    paint = f"0x{STACK_PAINT:02x}{STACK_PAINT:02x}{STACK_PAINT:02x}{STACK_PAINT:02x}u"
    return f"""\
#include <stddef.h>
#include <stdint.h>
#include "{prefix}_model.h"
{table}
static {prefix}_state_t armharness_state __attribute__((aligned(8)));
static {ctype} y[{max(out_dim, 1)}] __attribute__((aligned(8)));
static char line[{2 * width * (units + out_dim) + 2}];
extern uint32_t __stack_limit, __stack_top, __data_start, __data_end, __data_load;
extern uint32_t __bss_start, __bss_end;
void armharness_reset(void);
__attribute__((section(".vectors"), used)) const void *const armharness_vectors[2] = {{
    &__stack_top, (const void *)armharness_reset}};

static int armharness_semihost(int op, const void *arg)
{{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}}
__attribute__((noreturn)) void armharness_exit(int status)
{{
    armharness_semihost(0x18, (const void *)(status == 0 ? 0x20026 : 0x20023));
    for (;;) {{
    }}
}}
__attribute__((noinline)) void armharness_begin(void) {{ __asm__ volatile(""); }}
__attribute__((noinline)) void armharness_end(void) {{ __asm__ volatile(""); }}

/* the n bytes at v in memory order (int16 values: little-endian) */
static void hex(char *out, const void *v, size_t n)
{{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *bytes = (const uint8_t *)v;
    size_t i;
    for (i = 0; i < n; ++i) {{
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }}
}}

static void run(void)
{{
    uint32_t *p, sp, lowest;
    size_t b, t;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (p = &__stack_limit; p < (uint32_t *)sp; ++p) {{
        *p = {paint};
    }}
    for (b = 0; b < {batch}; ++b) {{
        {prefix}_reset(&armharness_state);
        for (t = 0; t < {steps}; ++t) {{
            const size_t i = b * {steps} + t;
            (void)i;
            armharness_begin();
{call}
            armharness_end();
            hex(line, armharness_state.h, {width * units});
            hex(line + {2 * width * units}, y, {width * out_dim});
            line[{2 * width * (units + out_dim)}] = '\\n';
            line[{2 * width * (units + out_dim) + 1}] = 0;
            armharness_semihost(0x04, line);
        }}
    }}
    for (p = &__stack_limit; p < (uint32_t *)sp && *p == {paint}; ++p) {{
    }}
    lowest = (uint32_t)p;
    {{
        char s[16];
        uint32_t used = sp - lowest, k = 8;
        s[8] = '\\n';
        s[9] = 0;
        while (k--) {{
            s[k] = "0123456789abcdef"[used & 15];
            used >>= 4;
        }}
        armharness_semihost(0x04, "STACK ");
        armharness_semihost(0x04, s);
    }}
}}

void armharness_reset(void)
{{
    uint32_t *src = &__data_load, *dst;
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20; /* CPACR: CP10, CP11 full access (MVE) */
    __asm__ volatile("dsb\\n\\tisb" ::: "memory");
    for (dst = &__data_start; dst < &__data_end;) {{
        *dst++ = *src++;
    }}
    for (dst = &__bss_start; dst < &__bss_end;) {{
        *dst++ = 0;
    }}
    run();
    armharness_exit(0);
}}
"""


def find_qemu() -> str:
    qemu = shutil.which("qemu-system-arm")
    if qemu is None:
        raise ToolchainError(f"qemu-system-arm was not found on PATH; install it with: "
                             f"{QEMU_HINT}")
    return qemu


def build_qemu_image(ir: QuantizedModel, inputs: np.ndarray, out_dir: Path, *, tokens: bool,
                     profile: str, cpu: str, opt: str, prefix: str,
                     portable: bool = False) -> ArmImage:
    from elman.firmware_codegen.arm.emulate import entry_points, step_sources

    sources = step_sources(ir, prefix=prefix, profile=profile, cpu=cpu)
    defines = (f"{prefix.upper()}_PORTABLE",) if portable else ()
    return build_image(sources, out_dir, cpu=cpu, opt=opt,
                       harness=harness_c(ir, inputs, tokens=tokens, prefix=prefix),
                       entry_points=entry_points(ir, prefix), defines=defines,
                       linker=linker_script())


class _Trace:
    """Per-step instruction counts, per-function totals, cycles and taken transfers, from
    QEMU's exec trace lines (one instruction each)."""

    def __init__(self, image: ArmImage, cpu: str):
        listing = disassemble(image.elf, cpu)
        model = get_target(cpu).cycles
        self.cost = {a: model.instruction_cycles(mn, ops) for a, mn, ops in listing}
        addresses = [a for a, _, _ in listing]
        self.size = {a: min(b - a, 4) for a, b in zip(addresses, addresses[1:], strict=False)}
        self.penalty = model.taken_penalty
        funcs = sorted((s.address, s.address + max(s.size, 1), s.name)
                       for s in image.symbols.values() if s.is_function)
        self.starts = [f[0] for f in funcs]
        self.funcs = funcs
        self.begin = image.symbols["armharness_begin"].address
        self.end = image.symbols["armharness_end"].address
        self.counts: list[int] = []
        self.cycles: list[float] = []
        self.by_function: dict[str, int] = {}

    def function_at(self, pc: int) -> str:
        i = bisect.bisect_right(self.starts, pc) - 1
        return self.funcs[i][2] if i >= 0 and pc < self.funcs[i][1] else "?"

    def read(self, lines) -> None:
        inside, n, cycles, last = False, 0, 0.0, -1
        names: dict[int, str] = {}
        for line in lines:
            i = line.find("[")
            if i < 0 or not line.startswith("Trace"):
                continue
            pc = int(line[i + 10:i + 18], 16)
            if pc == self.begin:
                inside, n, cycles, last = True, 0, 0.0, -1
            elif pc == self.end:
                if inside:
                    self.counts.append(n)
                    self.cycles.append(cycles + self.penalty)  # the return
                inside = False
            elif inside and not (self.begin <= pc < self.begin + 4
                                 or self.end <= pc < self.end + 4):
                n += 1
                cycles += self.cost.get(pc, 1.0)
                if last >= 0 and pc != last + self.size.get(last, 2):
                    cycles += self.penalty
                last = pc
                name = names.get(pc)
                if name is None:
                    name = names[pc] = self.function_at(pc)
                self.by_function[name] = self.by_function.get(name, 0) + 1


def run_image(image: ArmImage, *, machine: str, qemu_cpu: str, count: bool, cpu: str,
              work: Path) -> tuple[str, _Trace | None]:
    """Run the image to its semihosting exit; returns (its printed text, the step trace)."""
    out_path = work / "semihosting.out"
    cmd = [find_qemu(), "-M", machine, "-cpu", qemu_cpu, "-nographic", "-monitor", "none",
           "-serial", "none", "-chardev", f"file,id=semihosting,path={out_path}",
           "-semihosting-config", "enable=on,target=native,chardev=semihosting",
           "-kernel", str(image.elf)]
    trace = None
    if count:
        trace = _Trace(image, cpu)
        text = image.symbols
        model_lo = min(s.address for s in text.values() if s.is_function
                       and not s.name.startswith("armharness"))
        model_hi = max(s.address + s.size for s in text.values() if s.is_function
                       and not s.name.startswith("armharness"))
        fifo = work / "trace.fifo"
        os.mkfifo(fifo)
        cmd += ["-singlestep", "-d", "exec,nochain", "-D", str(fifo), "-dfilter",
                f"0x{model_lo:x}..0x{model_hi:x},0x{trace.begin:x}+4,0x{trace.end:x}+4"]
    with open(work / "qemu.out", "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True)
        errors: list[str] = []
        reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)
        reader.start()
        try:
            if trace is not None:
                with open(work / "trace.fifo", encoding="ascii", errors="replace") as lines:
                    trace.read(lines)
            proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise ToolchainError(f"qemu-system-arm ({machine}) did not finish within "
                                 f"{TIMEOUT_S} s") from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(timeout=5)
    text_out = out_path.read_text(encoding="utf-8", errors="replace") if out_path.exists() \
        else ""
    if proc.returncode != 0:
        raise ToolchainError(f"the {get_target(cpu).title} image failed under qemu-system-arm "
                             f"-M {machine} (exit status {proc.returncode}): "
                             f"{(''.join(errors) or text_out).strip()[-500:]}")
    return text_out, trace


def run_qemu(ir: QuantizedModel, inputs: np.ndarray, *, tokens: bool, profile: str, cpu: str,
             opt: str, prefix: str, work_dir: Path | str | None, portable: bool,
             count: bool = True, machine: str | None = None, qemu_cpu: str | None = None):
    """Run the model's C over ``inputs`` on the QEMU-emulated core of ``cpu``; an
    :class:`EmulatedRun` like unicorn's (instruction counts only when ``count``)."""
    from elman.firmware_codegen.arm.emulate import KERNEL_SUFFIXES, EmulatedRun

    target = get_target(cpu)
    default_machine, default_cpu = target.emulator_cpu.split("/") if "/" in \
        target.emulator_cpu else ("mps3-an547", "cortex-m55")
    machine, qemu_cpu = machine or default_machine, qemu_cpu or default_cpu
    batch, steps = inputs.shape[:2]
    with tempfile.TemporaryDirectory(prefix="elman-qemu-") as tmp:
        work = Path(work_dir) if work_dir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        image = build_qemu_image(ir, inputs, work, tokens=tokens, profile=profile, cpu=cpu,
                                 opt=opt, prefix=prefix, portable=portable)
        text, trace = run_image(image, machine=machine, qemu_cpu=qemu_cpu, count=count,
                                cpu=cpu, work=work)
    units, out_dim = ir.state_bytes, ir.output_dim
    rows = [line.strip() for line in text.splitlines()
            if line.strip() and not line.startswith("STACK")]
    stack_lines = [line for line in text.splitlines() if line.startswith("STACK")]
    if len(rows) != batch * steps or not stack_lines:
        raise ToolchainError(f"the {target.title} image printed {len(rows)} steps of "
                             f"{batch * steps}: {text[-300:]!r}")
    dtype = np.dtype(np.int8 if ir.state_bits == 8 else "<i2")  # the harness's hex bytes
    raw = np.frombuffer(bytes.fromhex("".join(rows)), dtype).reshape(batch, steps,
                                                                      units + out_dim)
    h = raw[:, :, :units].copy()
    y = raw[:, :, units:].copy() if out_dim else None
    counts = trace.counts if trace is not None else []
    if trace is not None and len(counts) != batch * steps:
        raise ToolchainError(f"the QEMU trace holds {len(counts)} steps of {batch * steps}")
    n = max(len(counts), 1)
    by_function = {} if trace is None else {k: v / n for k, v in sorted(trace.by_function.items())}
    kernel = [v for k, v in by_function.items() if k.endswith(KERNEL_SUFFIXES)]
    return EmulatedRun(
        outputs=StepOutputs(h=h, y=y), cpu=cpu, opt=opt, profile=profile,
        macs_per_step=ir.macs_per_step,
        instructions_per_step=sum(counts) / n, instructions_min=min(counts, default=0),
        instructions_max=max(counts, default=0),
        matvec_instructions_per_step=sum(kernel) if kernel else None,
        stack_bytes=int(stack_lines[-1].split()[1], 16), sizes=image.sizes.to_dict(),
        by_function=by_function,
        cycles_per_step=None if trace is None else sum(trace.cycles) / n,
        cycles_max=None if trace is None else max(trace.cycles, default=0.0),
    )
