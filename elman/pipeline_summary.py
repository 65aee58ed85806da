"""The one summary `elman run` prints at the end: the acceptance checks first (met / NOT met,
and what to try), then metrics, bit-exactness, size, speed and files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elman import rundir
from elman.quality_gates import Check, acceptance_checks
from elman.report_page import fmt
from elman.report_sections import bit_exact_pairs, mcu_rows, task_metric_rows


def text_table(header: list[str], rows: list[list[Any]], indent: str = "  ",
               left: int = 1) -> list[str]:
    """Aligned plain-text table: the first ``left`` columns left, the others right."""
    cells = [[c if isinstance(c, str) else fmt(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]

    def line(row: list[str]) -> str:
        return (indent + "  ".join(c.ljust(w) if i < left else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                ).rstrip()

    return [line(header)] + [line(r) for r in cells]


def checks_of(result: dict[str, Any]) -> list[Check]:
    """The acceptance checks of a :func:`elman.pipeline.run_pipeline` result."""
    return acceptance_checks(result.get("train"), result.get("quantize"), result.get("verify"),
                             bit_exact_pairs(result.get("verify"), result.get("mcu")))


def check_lines(checks: list[Check]) -> list[str]:
    """The checks as a table, a verdict line first, then what to try for each one NOT met."""
    if not checks:
        return []
    bad = [c for c in checks if not c.met]
    verdict = f"acceptance checks: {len(checks) - len(bad)} of {len(checks)} met"
    if bad:
        verdict += f"; NOT met: {', '.join(c.name for c in bad)}"
    lines = [verdict]
    lines += text_table(["check", "measured", "criterion", "status"],
                        [[c.name, c.measured, c.criterion, c.status] for c in checks], left=4)
    for advice in dict.fromkeys(c.advice for c in bad if c.advice):
        lines.append(f"  what to try: {advice}")
    return lines + [""]


def format_summary(result: dict[str, Any]) -> str:
    """Text summary of a :func:`elman.pipeline.run_pipeline` result."""
    run_dir = Path(result["run_dir"])
    train, quant = result.get("train"), result.get("quantize")
    verify, mcu = result.get("verify"), result.get("mcu")
    timings = ", ".join(f"{k} {v:.0f} s" for k, v in result.get("timings", {}).items())
    lines = [f"elman run {run_dir}: {result.get('data', '')}, "
             f"{result.get('seconds', 0):.0f} s ({timings})", ""]
    lines += check_lines(checks_of(result))
    warnings = (train or {}).get("warnings") or []
    lines += [f"warning: {w}" for w in warnings] + ([""] if warnings else [])

    header, rows = task_metric_rows(train, quant, verify)
    if rows:
        lines.append("task metric")
        lines += text_table(header[:-1], [r[:-1] for r in rows])
        notes = {r[0][r[0].rfind("["):]: r[-1] for r in rows if "[" in r[0]}
        lines += [f"    {tag} {where}" for tag, where in notes.items()]
        lines.append("")

    if (quant or {}).get("state_comparison"):
        from elman.quantize.state_comparison import text_lines

        lines += text_lines(quant["state_comparison"]) + [""]

    pairs = bit_exact_pairs(verify, mcu)
    if pairs:
        bad = sum(not p["ok"] for p in pairs)
        width = f"int{(verify or {}).get('model', {}).get('state_bits', 8)}"
        lines.append(f"bit-exactness: {len(pairs) - bad} of {len(pairs)} pairs bit-exact "
                     f"({width} h and y of every step)")
        lines += text_table(
            ["pair", "values", "mismatches", "max |diff|", "status"],
            [[f"{p['a']} vs {p['b']}", p["compared"], p["mismatches"], p["max_abs_diff_lsb"],
              "bit-exact" if p["ok"] else "MISMATCH"] for p in pairs])
        lines.append("")

    builds = mcu_rows(mcu)
    if builds:
        lines.append("microcontroller (bytes; instructions counted in the emulator)")
        lines += text_table(
            ["profile / cpu / opt", "flash", "code", "weights", "static RAM", "stack",
             "instr/step",
             "instr/MAC"],
            [[f"{b['profile']} {b['cpu']} -{b['opt']}", b["flash"], b["code"],
              b["weights_tables"], b["ram"], b.get("stack_bytes"), b["instructions_per_step"],
              b["instructions_per_mac"]] for b in builds])
        lines.append("")

    lines.append("files")
    code = sorted(p.name for p in (run_dir / rundir.CODE_DIR).glob("*") if p.is_file()) \
        if (run_dir / rundir.CODE_DIR).is_dir() else []
    for name, what in [(rundir.MODEL_KERAS, "float Keras model"),
                       (rundir.MODEL_TFLITE, "int8 step model" if (quant or {}).get(
                           "quantization", {}).get("state_bits", 8) == 8 else
                        "16x8 step model (int16 state)"),
                       (rundir.CODE_DIR + "/", "C99: " + ", ".join(code)),
                       (rundir.REPORT_HTML, "plots and tables, open in a browser"),
                       (rundir.PROVENANCE, "which stage wrote each file, SHA-256")]:
        if (run_dir / name).exists() and (name != rundir.CODE_DIR + "/" or code):
            lines.append(f"  {run_dir / name}  ({what})")
    return "\n".join(lines)
