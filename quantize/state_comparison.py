"""int8 and int16 state side by side: what ``elman quantize --state int16`` reports.

With ``--state int16`` the same float model is also converted with the int8 state (its own
default calibration) and evaluated on the same held-out data in LiteRT, so that the quant
report, the run summary and the report page show what the 16-bit state buys: the task
metric, the hidden-state error against float (mean, max, max per step position) and, for
text, the drift (mean error of the first and last windows of the stream). Flash, RAM and
instructions per step of both builds are measured by ``bench/int16_state.py``.
"""

from __future__ import annotations

from typing import Any

from elman.quantize import task_metrics

FORMAT = "elman-state-comparison/1"


def _row(state: str, result: dict[str, Any], parameter_bytes: int | None) -> dict[str, Any]:
    metrics = result["metrics"]
    if "bits_per_char" in metrics["float"]:
        name, f, q = "bits_per_char", metrics["float"]["bits_per_char"], \
            metrics["int8"]["bits_per_char"]
    else:
        name, f = task_metrics.headline(metrics["float"])
        _, q = task_metrics.headline(metrics["int8"])
    err = result["hidden_error"]
    row = {"state": state, "metric": name, "float": f, "quantized": q,
           "hidden_error_mean": err["mean"], "hidden_error_max": err["max"],
           "by_step": {"mean": err["by_step"]["mean"], "max": err["by_step"]["max"]}}
    if parameter_bytes is not None:
        row["parameter_bytes"] = int(parameter_bytes)
    if "perplexity" in metrics["int8"]:  # text: the size curve's point of this state width
        row["perplexity"] = metrics["int8"]["perplexity"]
        row["whole_stream"] = bool(result.get("whole_stream"))
    drift = result.get("drift")
    if drift:
        row["drift_first_window"] = drift["first_window_mean_abs_error"]
        row["drift_last_window"] = drift["last_window_mean_abs_error"]
        row["drift_window"] = drift["window"]
    return row


def side_by_side(int8: dict[str, Any], int16: dict[str, Any],
                 parameter_bytes: tuple[int, int] | None = None) -> dict[str, Any]:
    """The comparison block of the quant report, from both ``evaluate_*`` results (the same
    held-out data) and, optionally, both models' parameter bytes (int8, int16)."""
    sizes = parameter_bytes or (None, None)
    rows = [_row("int8", int8, sizes[0]), _row("int16", int16, sizes[1])]
    a, b = rows
    return {
        "format": FORMAT,
        "note": "the same float model quantized with an int8 and an int16 state, both run in "
                "LiteRT BUILTIN_REF on the same held-out data",
        "rows": rows,
        "mean_error_ratio": a["hidden_error_mean"] / b["hidden_error_mean"]
        if b["hidden_error_mean"] else None,
        "max_error_ratio": a["hidden_error_max"] / b["hidden_error_max"]
        if b["hidden_error_max"] else None,
    }


def table_rows(comparison: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows for the summaries: one row per state width."""
    rows = comparison["rows"]
    metric = rows[0]["metric"].replace("_", " ")
    header = ["state", f"{metric} float", f"{metric} quantized", "|h err| mean", "|h err| max"]
    drift = "drift_first_window" in rows[0]
    if drift:
        header += [f"first {rows[0]['drift_window']:,}", f"last {rows[0]['drift_window']:,}"]
    out = []
    for r in rows:
        cells = [r["state"], f"{r['float']:.4f}", f"{r['quantized']:.4f}",
                 f"{r['hidden_error_mean']:.5f}", f"{r['hidden_error_max']:.4f}"]
        if drift:
            cells += [f"{r['drift_first_window']:.5f}", f"{r['drift_last_window']:.5f}"]
        out.append(cells)
    return header, out


def text_lines(comparison: dict[str, Any], indent: str = "  ") -> list[str]:
    """The comparison as a plain-text table (the quantize and run summaries)."""
    header, rows = table_rows(comparison)
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
    lines = ["int8 vs int16 state (the same float model and held-out data, LiteRT)"]
    for row in [header, *rows]:
        lines.append(indent + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                        for i, (c, w) in enumerate(zip(row, widths,
                                                                       strict=True))))
    return lines + [indent + ratio_line(comparison)]


def ratio_line(comparison: dict[str, Any]) -> str:
    mean, peak = comparison.get("mean_error_ratio"), comparison.get("max_error_ratio")
    parts = [f"{name} {value:.1f}x" for name, value in (("mean", mean), ("max", peak))
             if value is not None]
    return "the int16 state's error against float is smaller than the int8 state's: " + \
        ", ".join(parts)
