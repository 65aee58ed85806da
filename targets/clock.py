"""``--clock 64MHz``: a core clock, for latency in time from the cycle models."""

from __future__ import annotations

import re

from elman.errors import ElmanError

DEFAULT_CLOCK_HZ = 64_000_000
_UNITS = {"": 1, "hz": 1, "khz": 1e3, "mhz": 1e6, "ghz": 1e9}
_CLOCK = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([kmg]?hz)?\s*$", re.IGNORECASE)


def parse_clock(text: str | float | int) -> float:
    """``64MHz``, ``64 mhz``, ``1.5GHz``, ``32kHz`` or plain ``64000000`` -> Hz."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        m = _CLOCK.match(text)
        if m is None:
            raise ElmanError(f"--clock {text!r} is not a clock frequency; write e.g. 64MHz, "
                             "480MHz, 32kHz or 16000000")
        value = float(m.group(1)) * _UNITS[(m.group(2) or "").lower()]
    if not 1e3 <= value <= 10e9:
        raise ElmanError(f"--clock {text!r}: a core clock between 1 kHz and 10 GHz, please")
    return value


def format_clock(hz: float) -> str:
    for unit, scale in (("GHz", 1e9), ("MHz", 1e6), ("kHz", 1e3)):
        if hz >= scale:
            return f"{hz / scale:g} {unit}"
    return f"{hz:g} Hz"
