"""The page model of ``report.html``: sections of blocks, cards, number formatting.

The template only loops over these and formats; every decision about what to
show is made in ``elman.report_sections``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Cell:
    text: str
    cls: str = ""


@dataclass
class Row:
    cells: list[Cell]
    status: str = ""  # "ok" | "bad" | ""


@dataclass
class Block:
    kind: str  # "heading" | "text" | "missing" | "figure" | "table"
    text: str = ""
    uri: str = ""
    caption: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    missing: str = ""

    def heading(self, text: str) -> None:
        self.blocks.append(Block("heading", text=text))

    def text(self, text: str) -> None:
        self.blocks.append(Block("text", text=text))

    def note_missing(self, text: str) -> None:
        self.blocks.append(Block("missing", text=text))

    def figure(self, uri: str, caption: str) -> None:
        self.blocks.append(Block("figure", uri=uri, caption=caption))

    def table(self, header: list[str], rows: list[list[Any]],
              statuses: list[str] | None = None) -> None:
        statuses = statuses or [""] * len(rows)
        self.blocks.append(Block("table", header=header, rows=[
            Row([_cell(v) for v in row], status) for row, status in zip(rows, statuses,
                                                                        strict=True)
        ]))


@dataclass
class Card:
    label: str
    value: str
    status: str = ""


def fmt(value: Any) -> str:
    """A number as a person reads it: ints with separators, floats to 4 significant digits."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        v = float(value)
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if v != 0 and abs(v) < 1e-3:
            return f"{v:.3e}"
        return f"{v:.4g}"
    return str(value)


def _cell(value: Any) -> Cell:
    if isinstance(value, Cell):
        return value
    numeric = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool)
    return Cell(fmt(value), "num" if numeric else "")


def status_cell(ok: bool, text_ok: str = "bit-exact", text_bad: str = "MISMATCH") -> Cell:
    return Cell(text_ok if ok else text_bad, "status")


