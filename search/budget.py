"""What a model may use on the target: flash, RAM, time per step; and the latency model.

``--flash 32K --ram 4K --latency 2ms --clock 64MHz`` become a :class:`Budget`.
Sizes take ``K``/``KB``/``KiB`` (1024 bytes) and ``M``/``MB``/``MiB``; times take
``s``, ``ms``, ``us`` (or ``µs``); clocks take ``Hz``, ``kHz``, ``MHz``, ``GHz``.

Latency of one step = instructions of the slowest measured step × cycles per
instruction of the core / clock. :func:`cycles_per_instruction` is the one
place that knows a core's CPI (a target registry can replace it later); the
numbers and how they were checked are in :data:`CYCLE_MODELS`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from elman.errors import ElmanError

_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024,
               "m": 1024**2, "mb": 1024**2, "mib": 1024**2}
_TIME_UNITS = {"s": 1e6, "ms": 1e3, "us": 1.0, "µs": 1.0}
_CLOCK_UNITS = {"": 1.0, "hz": 1.0, "k": 1e3, "khz": 1e3, "m": 1e6, "mhz": 1e6,
                "g": 1e9, "ghz": 1e9}
_NUMBER = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-zµ]*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class CycleModel:
    """Cycles per instruction of one core running elman's step, and how it was checked."""

    cpi: float
    basis: str


# Cycles per executed instruction, zero-wait-state memory. Checked by
# bench/search_cycle_model.py: it runs elman's step in unicorn, records every executed
# instruction (and whether each branch was taken), and prices each with the core's
# Technical Reference Manual timings (Cortex-M0+: ALU and MULS 1, LDR/STR 2,
# LDM/STM/PUSH/POP 1+N, B 2, B<cond> 2 taken / 1 not, BL 3, BX 2; Cortex-M4: ALU,
# MUL, SMLAD 1, LDR/STR 2 without load pipelining, LDM/STM/PUSH/POP 1+N, taken
# branches 3). Over random 8- to 128-unit models of both profiles it measured CPI
# 1.293-1.371 on the M0+ and 1.382-1.577 on the M4; the values below are the largest,
# rounded up, so a latency computed with them is an upper estimate on a part whose
# flash has no wait states (add the wait states of a faster clock yourself).
CYCLE_MODELS = {
    "cortex-m0plus": CycleModel(1.4, "Cortex-M0+ TRM instruction timings over elman's "
                                     "executed instruction mix, largest measured 1.371 "
                                     "(bench/search_cycle_model.py)"),
    "cortex-m4": CycleModel(1.6, "Cortex-M4 TRM instruction timings over elman's executed "
                                 "instruction mix, largest measured 1.577 "
                                 "(bench/search_cycle_model.py)"),
    "cortex-m7": CycleModel(1.0, "dual-issue Cortex-M7: at most one cycle per instruction "
                                 "assumed (not measured)"),
}


def cycles_per_instruction(cpu: str) -> float:
    """The CPI of ``cpu`` used for latency (the one place a core's timing lives)."""
    try:
        return CYCLE_MODELS[cpu].cpi
    except KeyError:
        raise ElmanError(f"no cycle model for cpu {cpu!r} (known: "
                         f"{', '.join(sorted(CYCLE_MODELS))})") from None


def latency_us(instructions: float, cpu: str, clock_hz: float | None) -> float | None:
    """Microseconds for ``instructions`` on ``cpu`` at ``clock_hz`` (None without a clock)."""
    if clock_hz is None:
        return None
    return instructions * cycles_per_instruction(cpu) / clock_hz * 1e6


def _parse(text: str, units: dict[str, float], what: str, example: str) -> float:
    m = _NUMBER.match(str(text))
    unit = m.group(2).lower() if m else ""
    if not m or unit not in units:
        raise ElmanError(f"{what} {text!r} is not understood (e.g. {example})")
    value = float(m.group(1)) * units[unit]
    if not math.isfinite(value) or value <= 0:
        raise ElmanError(f"{what} must be positive, got {text!r}")
    return value


def parse_size(text: str, what: str = "--flash") -> int:
    """Bytes of ``32K``, ``4KB``, ``1.5KiB``, ``1M``, ``12000``."""
    return int(_parse(text, _SIZE_UNITS, what, "32K, 4KB, 1M or 12000"))


def parse_time_us(text: str, what: str = "--latency") -> float:
    """Microseconds of ``2ms``, ``500us``, ``0.01s``."""
    return _parse(text, _TIME_UNITS, what, "2ms, 500us or 0.01s")


def parse_clock_hz(text: str, what: str = "--clock") -> float:
    """Hertz of ``64MHz``, ``48M``, ``8000000``."""
    return _parse(text, _CLOCK_UNITS, what, "64MHz, 48M or 8000000")


@dataclass(frozen=True)
class Budget:
    """The limits of one microcontroller; ``None`` is no limit."""

    cpu: str
    flash: int | None = None  # bytes
    ram: int | None = None  # bytes
    latency_us: float | None = None  # slowest step
    clock_hz: float | None = None

    def __post_init__(self) -> None:
        cycles_per_instruction(self.cpu)  # a core without a cycle model is refused here
        if self.latency_us is not None and self.clock_hz is None:
            raise ElmanError("--latency needs --clock (the core's clock, e.g. --clock 64MHz)")

    @classmethod
    def parse(cls, cpu: str, flash: str | None, ram: str | None, latency: str | None,
              clock: str | None) -> Budget:
        return cls(cpu=cpu,
                   flash=None if flash is None else parse_size(flash, "--flash"),
                   ram=None if ram is None else parse_size(ram, "--ram"),
                   latency_us=None if latency is None else parse_time_us(latency),
                   clock_hz=None if clock is None else parse_clock_hz(clock))

    def latency_of(self, instructions: float) -> float | None:
        return latency_us(instructions, self.cpu, self.clock_hz)

    def violations(self, flash: float, ram: float, instructions: float) -> dict[str, float]:
        """Optuna constraint values (feasible when every one is <= 0): how far each of
        flash, RAM and latency is over its limit, as a fraction of the limit."""
        latency = self.latency_of(instructions)
        pairs = {"flash": (flash, self.flash), "ram": (ram, self.ram),
                 "latency": (latency, self.latency_us)}
        return {name: 0.0 if limit is None or used is None else (used - limit) / limit
                for name, (used, limit) in pairs.items()}

    def exceeded(self, flash: float, ram: float, instructions: float) -> list[str]:
        """Each limit that is exceeded, as a phrase (empty: it fits)."""
        out = []
        latency = self.latency_of(instructions)
        if self.flash is not None and flash > self.flash:
            out.append(f"flash {flash:,.0f} B > {self.flash:,} B")
        if self.ram is not None and ram > self.ram:
            out.append(f"RAM {ram:,.0f} B > {self.ram:,} B")
        if self.latency_us is not None and latency is not None and latency > self.latency_us:
            out.append(f"latency {latency:,.1f} us > {self.latency_us:,.1f} us "
                       f"({instructions:,.0f} instructions)")
        return out

    def describe(self) -> str:
        parts = [self.cpu]
        if self.flash is not None:
            parts.append(f"flash {self.flash:,} B")
        if self.ram is not None:
            parts.append(f"RAM {self.ram:,} B")
        if self.latency_us is not None:
            parts.append(f"latency {self.latency_us:,.1f} us")
        if self.clock_hz is not None:
            parts.append(f"clock {self.clock_hz / 1e6:g} MHz")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {"cpu": self.cpu, "flash": self.flash, "ram": self.ram,
                "latency_us": self.latency_us, "clock_hz": self.clock_hz,
                "cycles_per_instruction": cycles_per_instruction(self.cpu),
                "cycle_model": CYCLE_MODELS[self.cpu].basis}
