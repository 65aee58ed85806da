"""``SEARCH_DIR/search.html``: the Pareto fronts and every trial, in one self-contained page.

Three plots (the quantized model's validation metric against flash, RAM and latency), each
with every trained trial (fits: filled; over the budget: hollow), the Pareto
front as a line, the budget as a dashed line and the best trial circled; then
the table of all trials. Pictures are PNG ``data:`` URIs and the page's
Content-Security-Policy forbids any fetch.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from elman.search.report import AXES, format_table

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _plot(report: dict[str, Any], axis: str, label: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = [e for e in report["trials"] if e["footprint"] == "measured"
               and e["metric"] is not None and e[axis] is not None]
    front = set(report["pareto"][axis])
    best = report["best"]
    fig, ax = plt.subplots(figsize=(5.2, 3.6), dpi=100)
    for fits, style in ((True, {"color": "tab:blue"}),
                        (False, {"facecolors": "none", "edgecolors": "tab:red"})):
        pts = [e for e in entries if bool(e["feasible"]) == fits]
        if pts:
            ax.scatter([e[axis] for e in pts], [e["metric"] for e in pts], s=28,
                       label="fits" if fits else "over budget", **style)
    line = sorted((e for e in entries if e["number"] in front), key=lambda e: e[axis])
    if line:
        ax.step([e[axis] for e in line], [e["metric"] for e in line], where="post",
                color="tab:green", lw=1, label="Pareto front")
    limit_key = {"flash": "flash", "ram": "ram", "latency_us": "latency_us"}[axis]
    limit = report["budget"].get(limit_key)
    if limit is not None:
        ax.axvline(limit, color="grey", ls="--", lw=1, label="budget")
    if best is not None and best.get(axis) is not None:
        ax.scatter([best[axis]], [best["metric"]], s=160, facecolors="none",
                   edgecolors="black", label=f"best (trial {best['number']})")
    ax.set_xlabel(label)
    ax.set_ylabel(report["objective"]["metric"])
    ax.grid(alpha=0.3)
    if entries:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no trained trial yet", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def render(report: dict[str, Any]) -> str:
    b = report["budget"]
    best = report["best"]
    summary = (f"best: trial {best['number']}, {report['objective']['metric']} "
               f"{best['metric']:.4g}, flash {best['flash']:,} B, RAM {best['ram']:,} B"
               f", {best['instructions_per_step_max']:,} instructions (slowest step); "
               f"run directory {best['run_dir']}") if best else "no trial fits the budget yet"
    plots = "\n".join(f'<figure><img alt="{html.escape(label)}" src="{_plot(report, axis, label)}">'
                      f"</figure>" for axis, label in AXES)
    objective = report["objective"]
    limits = ", ".join(f"{k} {v}" for k, v in b.items() if v is not None)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>elman search: {html.escape(report['options']['data'])}</title>
<style>body{{font-family:sans-serif;margin:1.5em;max-width:110em}}
figure{{display:inline-block;margin:0.3em}}pre{{font-size:12px;background:#f6f6f6;padding:0.8em;
overflow-x:auto}}</style></head><body>
<h1>elman search</h1>
<p>{html.escape(report['options']['data'])}: {html.escape(objective['metric'])}
({html.escape(objective['direction'])}), {html.escape(objective['validation'])}.</p>
<p>Budget: {html.escape(limits)}</p>
<p><b>{html.escape(summary)}</b></p>
<p>Trials: {html.escape(', '.join(f'{v} {k}' for k, v in sorted(report['counts'].items())))}.</p>
<h2>Pareto fronts</h2>
{plots}
<h2>All trials</h2>
<pre>{html.escape(format_table(report))}</pre>
</body></html>
"""
