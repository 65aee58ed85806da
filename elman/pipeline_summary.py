"""The one summary `elman run` prints at the end: metrics, bit-exactness, size, speed, files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elman import report_sections, rundir
from elman.report_page import fmt


def _table(header: list[str], rows: list[list[Any]], indent: str = "  ") -> list[str]:
    cells = [[fmt(c) if not isinstance(c, str) else c for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = [indent + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    for r in cells:
        lines.append(indent + "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                           strict=True))))
    return lines


def format_summary(result: dict[str, Any]) -> str:
    """Text summary of a :func:`elman.pipeline.run_pipeline` result."""
    run_dir = Path(result["run_dir"])
    train, quant = result.get("train"), result.get("quantize")
    verify, mcu = result.get("verify"), result.get("mcu")
    lines = [f"elman run {run_dir}: {result.get('data', '')}, done in "
             f"{result.get('seconds', 0):.0f} s "
             f"({', '.join(f'{k} {v:.0f} s' for k, v in result.get('timings', {}).items())})",
             ""]
    metrics = report_sections.task_metrics(train, quant, verify)
    if metrics:
        lines.append("task metric (held-out split)")
        lines += _table(["", "value"], [[label, value] for label, value in metrics])
        lines.append("")
    if verify:
        pairs = report_sections.verify_pairs(verify)
        lines.append("bit-exactness (int8 values of every step)")
        lines += _table(
            ["pair", "compared", "mismatches", "max |diff|", "status"],
            [[f"{p['a']} vs {p['b']}", p.get("compared"), p.get("mismatches"),
              p.get("max_abs_diff_lsb"), "bit-exact" if p["ok"] else "MISMATCH"]
             for p in pairs])
        lines.append("")
    rows = report_sections.mcu_rows(mcu)
    if rows:
        lines.append("microcontroller")
        lines += _table(["cpu", "opt", "flash B", "RAM B", "instr/step", "instr/MAC"],
                        [[b["cpu"], b["opt"], b.get("flash"), b.get("ram"),
                          b.get("instructions_per_step"), b.get("instructions_per_mac")]
                         for b in rows])
        lines.append("")
    lines.append("files")
    for name, what in [(rundir.MODEL_KERAS, "float Keras model"),
                       (rundir.MODEL_TFLITE, "int8 step model"),
                       (rundir.CODE_DIR, "generated C"),
                       (rundir.REPORT_HTML, "report: plots and tables")]:
        lines.append(f"  {run_dir / name}{'/' if name == rundir.CODE_DIR else ''}  ({what})")
    return "\n".join(lines)
