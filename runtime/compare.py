"""Compare two implementations' int8 outputs, step by step, unit by unit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from elman.runtime.outputs import StepOutputs


@dataclass(frozen=True)
class Mismatch:
    """One differing int8 value: where it is and both values."""

    sequence: int
    step: int
    kind: str  # "h" (hidden state) or "y" (output)
    unit: int
    a: int
    b: int

    def to_dict(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "step": self.step, "kind": self.kind,
                "unit": self.unit, "a": self.a, "b": self.b}

    def __str__(self) -> str:
        return (f"sequence {self.sequence}, step {self.step}, {self.kind}[{self.unit}]: "
                f"{self.a} vs {self.b}")


@dataclass(frozen=True)
class PairResult:
    """How two implementations agree on the int8 values of every step."""

    name_a: str
    name_b: str
    compared: int  # int8 values compared (hidden + outputs)
    compared_hidden: int
    mismatches: int
    mismatches_hidden: int
    max_abs_diff: int  # in LSB
    first_mismatch: Mismatch | None  # earliest step first, then sequence, h before y

    @property
    def ok(self) -> bool:
        return self.mismatches == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.name_a, "b": self.name_b,
            "compared": self.compared, "compared_hidden": self.compared_hidden,
            "mismatches": self.mismatches, "mismatches_hidden": self.mismatches_hidden,
            "max_abs_diff_lsb": self.max_abs_diff,
            "first_mismatch": (None if self.first_mismatch is None
                               else self.first_mismatch.to_dict()),
            "ok": self.ok,
        }


def _first(diff: np.ndarray, a: np.ndarray, b: np.ndarray, kind: str) -> Mismatch | None:
    idx = np.argwhere(diff)  # (sequence, step, unit), sorted by sequence
    if idx.size == 0:
        return None
    order = np.lexsort((idx[:, 2], idx[:, 0], idx[:, 1]))  # by step, sequence, unit
    s, t, u = (int(v) for v in idx[order[0]])
    return Mismatch(s, t, kind, u, int(a[s, t, u]), int(b[s, t, u]))


def compare_outputs(name_a: str, name_b: str, a: StepOutputs, b: StepOutputs) -> PairResult:
    """Compare ``a`` and ``b`` on every step of every sequence (h, and y when both have it)."""
    if a.h.shape != b.h.shape:
        raise ValueError(f"{name_a} h {a.h.shape} and {name_b} h {b.h.shape} differ in shape")
    pairs = [("h", a.h, b.h)]
    if a.y is not None and b.y is not None:
        if a.y.shape != b.y.shape:
            raise ValueError(f"{name_a} y {a.y.shape} and {name_b} y {b.y.shape} differ in shape")
        pairs.append(("y", a.y, b.y))
    compared = mismatches = max_diff = 0
    mismatches_hidden = 0
    firsts: list[Mismatch] = []
    for kind, va, vb in pairs:
        d = np.abs(va.astype(np.int16) - vb.astype(np.int16))
        n = int(np.count_nonzero(d))
        compared += int(d.size)
        mismatches += n
        if kind == "h":
            mismatches_hidden = n
        if n:
            max_diff = max(max_diff, int(d.max()))
            m = _first(d, va, vb, kind)
            if m is not None:
                firsts.append(m)
    first = min(firsts, key=lambda m: (m.step, m.sequence, m.kind != "h", m.unit), default=None)
    return PairResult(name_a, name_b, compared, int(a.h.size), mismatches, mismatches_hidden,
                      max_diff, first)
