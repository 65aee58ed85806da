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


def compare_outputs(name_a: str, name_b: str, a: StepOutputs, b: StepOutputs,
                    lengths: np.ndarray | None = None) -> PairResult:
    """Compare ``a`` and ``b`` on every step of every sequence (h, and y when both have it).

    ``lengths`` (B,): sequence ``n`` is steps ``0 .. lengths[n] - 1``; the padding after
    its end is neither compared nor counted (None: every step is real).
    """
    if a.h.shape != b.h.shape:
        raise ValueError(f"{name_a} h {a.h.shape} and {name_b} h {b.h.shape} differ in shape")
    pairs = [("h", a.h, b.h)]
    if a.y is not None and b.y is not None:
        if a.y.shape != b.y.shape:
            raise ValueError(f"{name_a} y {a.y.shape} and {name_b} y {b.y.shape} differ in shape")
        pairs.append(("y", a.y, b.y))
    real = _real_steps(lengths, a.h.shape[:2])
    compared = mismatches = max_diff = 0
    mismatches_hidden = compared_hidden = 0
    firsts: list[Mismatch] = []
    for kind, va, vb in pairs:
        d = np.abs(va.astype(np.int16) - vb.astype(np.int16))
        d[~real] = 0  # padding after a sequence's end: not part of the program's answer
        n = int(np.count_nonzero(d))
        size = int(real.sum()) * d.shape[2]
        compared += size
        mismatches += n
        if kind == "h":
            mismatches_hidden, compared_hidden = n, size
        if n:
            max_diff = max(max_diff, int(d.max()))
            m = _first(d, va, vb, kind)
            if m is not None:
                firsts.append(m)
    first = min(firsts, key=lambda m: (m.step, m.sequence, m.kind != "h", m.unit), default=None)
    return PairResult(name_a, name_b, compared, compared_hidden, mismatches, mismatches_hidden,
                      max_diff, first)


def _real_steps(lengths: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (B, T): True on each sequence's real steps."""
    batch, steps = shape
    if lengths is None:
        return np.ones(shape, bool)
    lengths = np.asarray(lengths)
    if lengths.shape != (batch,) or (lengths < 0).any() or (lengths > steps).any():
        raise ValueError(f"lengths {lengths.shape} must give 0..{steps} steps for each of "
                         f"{batch} sequences")
    return np.arange(steps)[None, :] < lengths[:, None]
