"""Per-instruction-class cycle models: exact instruction counts -> estimated cycles.

The emulators count executed instructions exactly (that is the asserted
figure). A cycle model turns them into an *estimate* of time: every executed
instruction is classified by its mnemonic (from the toolchain's ``objdump``
of the image) and costs its class's cycles; every taken control transfer
(the next instruction executed is not the one that follows in memory: a taken
branch, a call, a return) adds the core's pipeline refill. Values are from the
cores' technical reference manuals (instruction timing tables), for
zero-wait-state memory; not modelled: flash wait states, load/store pipelining
between neighbouring accesses, dual issue (Cortex-M7), beat overlap between
MVE instructions beyond what ``mve`` below states, branch prediction.

Checked against a published figure: NNoM reports ~2.2 cycles/MAC for its GRU
with CMSIS-NN and ~5.3 in plain C on an STM32L476 (Cortex-M4); the Cortex-M4
model gives elman's DSP and portable matrix-vector kernels figures of the same
order (``bench/mcu.py`` prints them, ``tests/test_targets.py`` asserts the range).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CLASSES = ("alu", "mul", "mul_long", "mac", "div", "load", "load_pair", "store", "multiple",
           "branch", "loop", "vector_load", "vector_mac", "vector")


@dataclass(frozen=True)
class CycleModel:
    """Cycles per instruction class, plus ``taken_penalty`` per taken control transfer."""

    name: str
    source: str  # where the numbers come from
    costs: dict[str, float]
    taken_penalty: float
    per_register: float = 1.0  # LDM/STM/PUSH/POP: 1 + per_register * registers
    notes: tuple[str, ...] = field(default_factory=tuple)
    exact: bool = False  # the emulator counts the cycles itself; this table only documents

    def instruction_cycles(self, mnemonic: str, operands: str = "") -> float:
        kind = classify(mnemonic)
        if kind == "multiple":
            regs = _register_count(operands)
            return 1 + self.per_register * regs
        return self.costs.get(kind, self.costs["alu"])

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "source": self.source, "costs": dict(self.costs),
                "taken_penalty": self.taken_penalty, "notes": list(self.notes),
                "exact": self.exact}


_ARM_COND = r"(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?"


def classify(mnemonic: str) -> str:
    """The class of one instruction (Arm Thumb, MVE or RISC-V mnemonic, any case)."""
    m = mnemonic.lower()
    m = (m[2:] if m.startswith("c.") else m).split(".")[0]  # RISC-V c.lw is lw, compressed
    if m.startswith("v"):
        if m.startswith(("vldr", "vld2", "vld4", "vstr", "vst2", "vst4")):
            return "vector_load"
        if m.startswith(("vmladav", "vmlav", "vmlaldav", "vrmlaldavh", "vmla", "vmlas")):
            return "vector_mac"
        return "vector"
    if m in ("dls", "dlstp", "wls", "wlstp", "le", "letp", "lctp"):
        return "loop"
    # RISC-V
    if m in ("mul", "mulh", "mulhu", "mulhsu"):
        return "mul_long" if m != "mul" else "mul"
    if m in ("div", "divu", "rem", "remu", "sdiv", "udiv"):
        return "div"
    if m in ("lb", "lh", "lw", "lbu", "lhu", "lwsp"):
        return "load"
    if m in ("sb", "sh", "sw", "swsp"):
        return "store"
    if m in ("beq", "bne", "blt", "bge", "bltu", "bgeu", "beqz", "bnez", "blez", "bgez",
             "bltz", "bgtz", "bgt", "ble", "bgtu", "bleu", "j", "jal", "jalr", "jr", "ret",
             "call", "tail"):
        return "branch"
    # Arm Thumb
    if m in ("push", "pop") or re.fullmatch(r"(ldm|stm)(ia|db|fd|ea)?(\.w)?", m):
        return "multiple"
    if m.startswith("ldrd"):
        return "load_pair"
    if m.startswith(("ldr", "ldrex")):
        return "load"
    if m.startswith(("str", "strex")):
        return "store"
    if m in ("smull", "umull", "smlal", "umlal", "smulls", "umulls"):
        return "mul_long"
    if re.fullmatch(r"(smla[dx]*|smlsd|smuad|smusd|smlabb|smlabt|smlatb|smlatt|smlaw[bt]|"
                    r"smmla|smmul|smmulr|smulbb|smulbt|smultb|smultt|smulw[bt])x?", m):
        return "mac"
    if m in ("mul", "muls", "mla", "mls"):
        return "mul"
    if re.fullmatch(r"(b|bl|blx|bx|cbz|cbnz|tbb|tbh)" + _ARM_COND + r"(\.[nw])?", m):
        return "branch"
    return "alu"


def _register_count(operands: str) -> int:
    """Registers in a ``{r4, r5-r7, lr}`` list."""
    inside = operands[operands.find("{") + 1: operands.find("}")] if "{" in operands else ""
    n = 0
    for part in filter(None, (p.strip() for p in inside.split(","))):
        if "-" in part:
            a, b = (int(re.sub(r"\D", "", x) or 0) for x in part.split("-"))
            n += b - a + 1
        else:
            n += 1
    return max(n, 1)


CYCLE_MODELS: dict[str, CycleModel] = {m.name: m for m in (
    CycleModel(
        "cortex-m0plus", "Cortex-M0+ TRM (Arm DDI 0484), ARMv6-M instruction timing; "
        "single-cycle multiplier (MULS 1), two-stage pipeline",
        {"alu": 1, "mul": 1, "mul_long": 1, "mac": 1, "div": 1, "load": 2, "load_pair": 3,
         "store": 2, "branch": 1, "loop": 1, "vector_load": 1, "vector_mac": 1, "vector": 1},
        taken_penalty=1,
        notes=("B taken 2, BL 3, BX 2, POP {..,pc} 3+N as the TRM",)),
    CycleModel(
        "cortex-m4", "Cortex-M4 TRM (Arm DDI 0439), table 3-1: ALU, MUL, SMULL/SMLAL, SMLAD "
        "1; LDR 2, LDRD 3, LDM 1+N; taken branch 1+P with P (pipeline refill) taken as 2",
        {"alu": 1, "mul": 1, "mul_long": 1, "mac": 1, "div": 7, "load": 2, "load_pair": 3,
         "store": 1, "branch": 1, "loop": 1, "vector_load": 1, "vector_mac": 1, "vector": 1},
        taken_penalty=2,
        notes=("stores 1 (write buffer); loads not pipelined with their neighbours",)),
    CycleModel(
        "cortex-m7", "Cortex-M7 TRM (Arm DDI 0489) as a single-issue core: 1 per instruction, "
        "loads 1 (TCM), taken branch penalty 1 (predicted); dual issue not modelled, so "
        "an upper bound",
        {"alu": 1, "mul": 1, "mul_long": 1, "mac": 1, "div": 7, "load": 1, "load_pair": 1,
         "store": 1, "branch": 1, "loop": 1, "vector_load": 1, "vector_mac": 1, "vector": 1},
        taken_penalty=1, per_register=1.0),
    CycleModel(
        "cortex-m33", "Cortex-M33 TRM (Arm 100230) three-stage pipeline, timing as the "
        "Cortex-M4's: ALU, multiplies and DSP MACs 1; LDR 2, LDRD 3; taken branch penalty 2",
        {"alu": 1, "mul": 1, "mul_long": 1, "mac": 1, "div": 7, "load": 2, "load_pair": 3,
         "store": 1, "branch": 1, "loop": 1, "vector_load": 1, "vector_mac": 1, "vector": 1},
        taken_penalty=2),
    CycleModel(
        "cortex-m55", "Cortex-M55 TRM (Arm 101051) and its software optimization guide: "
        "scalar ALU/MUL 1, loads 1 (TCM), taken branch penalty 2; MVE is dual-beat (a "
        "128-bit instruction takes 2 cycles; VLDR and VMLADAV interleaved overlap, so 1.5 "
        "each on average here); a taken LE of a low-overhead loop costs nothing extra",
        {"alu": 1, "mul": 1, "mul_long": 1, "mac": 1, "div": 7, "load": 1, "load_pair": 2,
         "store": 1, "branch": 1, "loop": 1, "vector_load": 1.5, "vector_mac": 1.5,
         "vector": 2},
        taken_penalty=2,
        notes=("LE taken: no refill (the loop's start is cached)",)),
    CycleModel(
        "rv32imc", "a generic single-issue in-order RV32IMC (after the SiFive E31 core "
        "manual: ALU and MUL 1, loads 2 with their load-use stall, DIV up to 33, taken "
        "branches and jumps 2 extra, no branch prediction)",
        {"alu": 1, "mul": 1, "mul_long": 1, "mac": 1, "div": 33, "load": 2, "load_pair": 4,
         "store": 1, "branch": 1, "loop": 1, "vector_load": 1, "vector_mac": 1, "vector": 1},
        taken_penalty=2),
    CycleModel(
        "atmega328p", "exact: simavr charges every instruction the cycles of the AVR "
        "instruction set manual (Microchip DS40002198) for the ATmega328P (avr5, 16-bit PC); "
        "the table is what it charges: ALU 1, MUL/MULS 2, LD/ST 2, LPM 3, taken branch +1, "
        "RCALL 3, CALL/RET 4, PUSH 2, POP 2",
        {"alu": 1, "mul": 2, "mul_long": 2, "mac": 2, "div": 1, "load": 2, "load_pair": 3,
         "store": 2, "branch": 1, "loop": 1, "vector_load": 1, "vector_mac": 1, "vector": 1},
        taken_penalty=1, exact=True,
        notes=("cycles are counted by simavr, not estimated from this table",)),
)}
