"""A core in ``unicorn`` that calls functions of an :class:`ArmImage` (Arm Thumb or RISC-V).

The core is the target's unicorn model, selected explicitly (``UC_MODE_THUMB``
with ``UC_CPU_ARM_CORTEX_M0`` / ``_M4`` / ``_M7`` / ``_M33``; ``UC_MODE_MCLASS``
is never used because it silently emulates a Cortex-M33 whatever was asked;
``UC_MODE_RISCV32`` with the SiFive E31 model for RV32IMC). The image's
``PT_LOAD`` segments are loaded at their run addresses (what a startup routine
would have copied), a function is called by the ABI (AAPCS: r0-r3; RISC-V
ilp32: a0-a7; the return address a sentinel), and every executed instruction
is counted, exactly and deterministically, per function of the symbol table: a
block hook adds the number of instructions in each translated block (decoded
once: a 32-bit Thumb-2 instruction starts with 0b11101, 0b11110 or 0b11111; a
16-bit RISC-V compressed instruction has low bits other than 0b11). Taken
control transfers are counted too (a block that does not start where the
previous one ended), for the cycle models of ``elman.targets.cycles``.
The stack is painted once when the image is loaded, so the deepest stack use
of all calls so far is measured (``stack_high_water``), not estimated.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

from elftools.elf.elffile import ELFFile
from elman.firmware_codegen.arm.build import (
    FLASH_LENGTH,
    FLASH_ORIGIN,
    RAM_LENGTH,
    RAM_ORIGIN,
    ArmImage,
)
from elman.targets import get_target
from unicorn import (
    UC_ARCH_ARM,
    UC_ARCH_RISCV,
    UC_HOOK_BLOCK,
    UC_MODE_RISCV32,
    UC_MODE_THUMB,
    Uc,
    UcError,
)
from unicorn import arm_const as arm
from unicorn import riscv_const as riscv

from elman.errors import ToolchainError

SENTINEL = 0x3000_0000  # return address of every call: a page of its own
STACK_PAINT = 0xA5
MAX_INSTRUCTIONS_PER_CALL = 50_000_000
# without counting, a call that has not returned after this long is stopped (unicorn's
# timeout, in microseconds): counting every instruction in Python costs ~100x the emulation
MAX_SECONDS_PER_CALL = 60


@dataclass(frozen=True)
class CallResult:
    """One function call: return value and instructions executed."""

    r0: int
    instructions: int
    by_function: dict[str, int]  # instructions executed inside each function symbol
    taken: int = 0  # taken control transfers (branches, calls, returns)
    cycles: float | None = None  # the target's cycle model, when the machine has one


@dataclass(frozen=True)
class _Abi:
    """How one instruction set is emulated and called."""

    arch: int
    mode: int
    constants: object
    args: tuple[int, ...]
    sp: int
    ret: int  # the link register
    pc: int
    code_bit: int  # ORed into code addresses (Thumb: 1)
    count: Callable[[bytes], int]


def _thumb_instruction_count(code: bytes) -> int:
    """Number of Thumb instructions in ``code`` (16- and 32-bit encodings)."""
    n = i = 0
    while i + 1 < len(code):
        first = code[i] | (code[i + 1] << 8)
        i += 4 if (first >> 11) in (0b11101, 0b11110, 0b11111) else 2
        n += 1
    return n


def _riscv_instruction_count(code: bytes) -> int:
    """Number of RISC-V instructions in ``code`` (32-bit, and 16-bit compressed)."""
    n = i = 0
    while i + 1 < len(code):
        i += 4 if code[i] & 0b11 == 0b11 else 2
        n += 1
    return n


ABIS = {
    "arm": _Abi(UC_ARCH_ARM, UC_MODE_THUMB, arm,
                tuple(arm.UC_ARM_REG_R0 + i for i in range(4)), arm.UC_ARM_REG_SP,
                arm.UC_ARM_REG_LR, arm.UC_ARM_REG_PC, 1, _thumb_instruction_count),
    "riscv": _Abi(UC_ARCH_RISCV, UC_MODE_RISCV32, riscv,
                  tuple(riscv.UC_RISCV_REG_A0 + i for i in range(8)), riscv.UC_RISCV_REG_SP,
                  riscv.UC_RISCV_REG_RA, riscv.UC_RISCV_REG_PC, 0, _riscv_instruction_count),
}


class Machine:
    """One emulated core with one image loaded; state persists between calls."""

    def __init__(self, image: ArmImage, instruction_costs: dict[int, float] | None = None, *,
                 count_instructions: bool = True):
        """``instruction_costs``: cycles of each instruction address (a cycle model applied
        to the image's disassembly), to estimate cycles per call. ``count_instructions=False``
        runs without the block hook (calls then report 0 instructions): for outputs only,
        e.g. ``elman verify``."""
        self.image = image
        self.count_instructions = count_instructions
        target = get_target(image.cpu)
        if target.emulator != "unicorn":
            raise ToolchainError(f"{target.title} is not emulated in unicorn "
                                 f"({target.emulator})")
        self.abi = abi = ABIS[target.arch]
        self.taken_penalty = target.cycles.taken_penalty
        self.uc = Uc(abi.arch, abi.mode, cpu=getattr(abi.constants, target.emulator_cpu))
        self.uc.mem_map(FLASH_ORIGIN, FLASH_LENGTH)
        self.uc.mem_map(RAM_ORIGIN, RAM_LENGTH)
        self.uc.mem_map(SENTINEL, 0x1000)
        with open(image.elf, "rb") as f:
            for seg in ELFFile(f).iter_segments():
                if seg["p_type"] == "PT_LOAD" and seg["p_filesz"]:
                    self.uc.mem_write(seg["p_vaddr"], seg.data())
        funcs = sorted((s.address, s.address + max(s.size, 1), s.name)
                       for s in image.symbols.values() if s.is_function)
        self._func_starts = [f[0] for f in funcs]
        self._funcs = funcs
        self._costs = instruction_costs
        self._cost_addresses = sorted(instruction_costs) if instruction_costs else []
        self._block_cache: dict[tuple[int, int], tuple[int, str, float]] = {}
        self._counts: dict[str, int] = {}
        self._next = -1  # where the previous block ended
        self._taken = 0
        self._cycles = 0.0
        if count_instructions:
            self.uc.hook_add(UC_HOOK_BLOCK, self._on_block)
        lo, hi = image.stack_limit, image.stack_top
        self.uc.mem_write(lo, bytes([STACK_PAINT]) * (hi - lo))

    # ---- memory -----------------------------------------------------------------
    def address(self, symbol: str) -> int:
        try:
            return self.image.symbols[symbol].address
        except KeyError:
            raise ToolchainError(f"symbol {symbol!r} is not in {self.image.elf}") from None

    def write(self, symbol_or_address: str | int, data: bytes) -> None:
        self.uc.mem_write(self._addr(symbol_or_address), bytes(data))

    def read(self, symbol_or_address: str | int, size: int) -> bytes:
        return bytes(self.uc.mem_read(self._addr(symbol_or_address), size))

    def _addr(self, s: str | int) -> int:
        return self.address(s) if isinstance(s, str) else s

    # ---- calls ------------------------------------------------------------------
    def call(self, function: str, *args: int) -> CallResult:
        """Call ``function(args...)`` (word arguments in registers, then the stack) until it
        returns."""
        sym = self.image.symbols.get(function)
        if sym is None or not sym.is_function:
            raise ToolchainError(f"function {function!r} is not in {self.image.elf}")
        abi, hi = self.abi, self.image.stack_top
        n_reg = len(abi.args)
        for reg, a in zip(abi.args, args[:n_reg], strict=False):
            self.uc.reg_write(reg, a & 0xFFFF_FFFF)
        stacked = [a & 0xFFFF_FFFF for a in args[n_reg:]]
        sp = hi - 8 * ((len(stacked) + 1) // 2)  # AAPCS: 8-byte aligned at the call
        if stacked:
            self.uc.mem_write(sp, b"".join(a.to_bytes(4, "little") for a in stacked))
        self.uc.reg_write(abi.sp, sp)
        self.uc.reg_write(abi.ret, SENTINEL | abi.code_bit)
        self._counts, self._next, self._taken, self._cycles = {}, -1, 0, 0.0
        try:
            if self.count_instructions:
                self.uc.emu_start(sym.address | abi.code_bit, SENTINEL,
                                  count=MAX_INSTRUCTIONS_PER_CALL)
            else:
                self.uc.emu_start(sym.address | abi.code_bit, SENTINEL,
                                  timeout=int(MAX_SECONDS_PER_CALL * 1_000_000))
        except UcError as exc:
            pc = self.uc.reg_read(abi.pc)
            raise ToolchainError(f"emulated {self.image.cpu} faulted in {function} at "
                                 f"pc=0x{pc:08x} ({self._function_at(pc)}): {exc}") from None
        pc = self.uc.reg_read(abi.pc)
        if pc != SENTINEL:
            limit = (f"{MAX_INSTRUCTIONS_PER_CALL} instructions" if self.count_instructions
                     else f"{MAX_SECONDS_PER_CALL} s")
            raise ToolchainError(f"{function} did not return within {limit} (pc=0x{pc:08x})")
        counts = dict(sorted(self._counts.items()))
        taken = self._taken + 1  # the return to the caller
        cycles = None if self._costs is None else self._cycles + taken * self.taken_penalty
        return CallResult(r0=self.uc.reg_read(abi.args[0]),
                          instructions=sum(counts.values()), by_function=counts, taken=taken,
                          cycles=cycles)

    def stack_high_water(self) -> int:
        """Deepest stack use, in bytes below the call's stack pointer, of all calls so far
        (stacked arguments of calls with more than four included)."""
        lo, hi = self.image.stack_limit, self.image.stack_top
        stack = bytes(self.uc.mem_read(lo, hi - lo))
        untouched = len(stack) - len(stack.lstrip(bytes([STACK_PAINT])))
        if untouched == 0:
            raise ToolchainError(f"the {hi - lo}-byte emulator stack overflowed")
        return (hi - lo) - untouched

    # ---- instruction counting ---------------------------------------------------
    def _on_block(self, uc: Uc, address: int, size: int, _user: object) -> None:
        key = (address, size)
        hit = self._block_cache.get(key)
        if hit is None:
            hit = (self.abi.count(bytes(uc.mem_read(address, size))),
                   self._function_at(address), self._block_cycles(address, size))
            self._block_cache[key] = hit
        n, name, cycles = hit
        self._counts[name] = self._counts.get(name, 0) + n
        self._cycles += cycles
        if self._next not in (-1, address):
            self._taken += 1
        self._next = address + size

    def _block_cycles(self, address: int, size: int) -> float:
        if not self._costs:
            return 0.0
        lo = bisect.bisect_left(self._cost_addresses, address)
        hi = bisect.bisect_left(self._cost_addresses, address + size)
        return sum(self._costs[a] for a in self._cost_addresses[lo:hi])

    def _function_at(self, address: int) -> str:
        i = bisect.bisect_right(self._func_starts, address) - 1
        if i >= 0 and address < self._funcs[i][1]:
            return self._funcs[i][2]
        return "?"

