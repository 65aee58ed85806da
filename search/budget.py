"""What a model may use on the target: flash, RAM, time per step; and its latency.

``--flash 32K --ram 4K --latency 2ms --clock 64MHz`` become a :class:`Budget`.
Sizes take ``K``/``KB``/``KiB`` (1024 bytes) and ``M``/``MB``/``MiB``; times take
``s``, ``ms``, ``us`` (or ``µs``); clocks are ``elman mcu --clock``'s
(:func:`elman.targets.clock.parse_clock`).

Latency of one step = cycles of the slowest measured step / clock. The cycles
are the target registry's cycle model (:mod:`elman.targets.cycles`: every
executed instruction priced by its class, plus each taken transfer's refill)
applied to the step the emulator ran, exactly the ``cycles_per_step_max`` that
``elman mcu`` reports for the same build; the search keeps no timing of its own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from elman.search.footprint import Footprint
from elman.targets import get_target
from elman.targets.clock import format_clock, parse_clock

from elman.errors import ElmanError

_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024,
               "m": 1024**2, "mb": 1024**2, "mib": 1024**2}
_TIME_UNITS = {"s": 1e6, "ms": 1e3, "us": 1.0, "µs": 1.0}
_NUMBER = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-zµ]*)\s*$", re.IGNORECASE)


def latency_us(cycles: float | None, clock_hz: float | None) -> float | None:
    """Microseconds of ``cycles`` at ``clock_hz`` (None without a clock or cycles)."""
    if clock_hz is None or cycles is None:
        return None
    return cycles / clock_hz * 1e6


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


@dataclass(frozen=True)
class Budget:
    """The limits of one microcontroller; ``None`` is no limit."""

    cpu: str
    flash: int | None = None  # bytes
    ram: int | None = None  # bytes
    latency_us: float | None = None  # slowest step
    clock_hz: float | None = None

    def __post_init__(self) -> None:
        get_target(self.cpu)  # an unknown core is refused here, with the known ones listed
        if self.latency_us is not None and self.clock_hz is None:
            raise ElmanError("--latency needs --clock (the core's clock, e.g. --clock 64MHz)")

    @classmethod
    def parse(cls, cpu: str, flash: str | None, ram: str | None, latency: str | None,
              clock: str | None) -> Budget:
        return cls(cpu=cpu,
                   flash=None if flash is None else parse_size(flash, "--flash"),
                   ram=None if ram is None else parse_size(ram, "--ram"),
                   latency_us=None if latency is None else parse_time_us(latency),
                   clock_hz=None if clock is None else parse_clock(clock))

    def latency_of(self, fp: Footprint) -> float | None:
        """Microseconds of ``fp``'s slowest step at the budget's clock."""
        return latency_us(fp.cycles_per_step_max, self.clock_hz)

    def violations(self, fp: Footprint) -> dict[str, float]:
        """Optuna constraint values (feasible when every one is <= 0): how far each of
        flash, RAM and latency is over its limit, as a fraction of the limit."""
        pairs = {"flash": (fp.flash, self.flash), "ram": (fp.ram, self.ram),
                 "latency": (self.latency_of(fp), self.latency_us)}
        return {name: 0.0 if limit is None or used is None else (used - limit) / limit
                for name, (used, limit) in pairs.items()}

    def exceeded(self, fp: Footprint) -> list[str]:
        """Each limit that ``fp`` exceeds, as a phrase (empty: it fits)."""
        out = []
        latency = self.latency_of(fp)
        if self.flash is not None and fp.flash > self.flash:
            out.append(f"flash {fp.flash:,.0f} B > {self.flash:,} B")
        if self.ram is not None and fp.ram > self.ram:
            out.append(f"RAM {fp.ram:,.0f} B > {self.ram:,} B")
        if self.latency_us is not None and latency is not None and latency > self.latency_us:
            out.append(f"latency {latency:,.1f} us > {self.latency_us:,.1f} us "
                       f"({fp.cycles_per_step_max:,.0f} cycles, "
                       f"{fp.instructions_per_step_max:,} instructions)")
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
            parts.append(f"clock {format_clock(self.clock_hz)}")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {"cpu": self.cpu, "flash": self.flash, "ram": self.ram,
                "latency_us": self.latency_us, "clock_hz": self.clock_hz,
                "cycle_model": get_target(self.cpu).cycles.describe()}
