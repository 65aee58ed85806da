"""``RUN_DIR/report.html``: one self-contained page with what a run measured.

:func:`build_report` reads whatever reports the run directory holds
(``train_report.json``, ``quant_report.json``, ``verify_report.json``,
``mcu_report.json``), lets ``elman.report_sections`` turn them into sections
(plots from ``elman.report_plots`` as PNG data URIs), and renders
``templates/report.html.j2``. The page loads nothing from anywhere: CSS is
inline, pictures are ``data:`` URIs, and a Content-Security-Policy forbids any
other fetch. A stage whose report is missing gets a section saying which
command makes it, never a broken page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from elman import __version__, provenance, rundir
from elman.errors import ElmanError

REPORTS = (rundir.TRAIN_REPORT, rundir.QUANT_REPORT, rundir.VERIFY_REPORT, rundir.MCU_REPORT)


def load_report(run_dir: Path, name: str) -> dict[str, Any] | None:
    """A stage's JSON report, or None when the stage has not run."""
    path = run_dir / name
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ElmanError(f"{path} is not a readable JSON report ({exc})") from None


def render_report(run_dir: Path | str) -> str:
    """The HTML text of the report of ``run_dir`` (reads, writes nothing)."""
    import jinja2

    from elman import report_sections

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ElmanError(f"run directory {run_dir} does not exist")
    reports = {name: load_report(run_dir, name) for name in REPORTS}
    context = report_sections.build_page(run_dir, reports)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("elman", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(version=__version__, **context)


def build_report(run_dir: Path | str) -> Path:
    """Write ``RUN_DIR/report.html`` and return its path.

    Every file the page describes is checked first (:mod:`elman.provenance`): a
    report made from a model other than the one in the directory is refused.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ElmanError(f"run directory {run_dir} does not exist")
    stage_run = provenance.begin(run_dir, "report", optional=[
        name for stage in rundir.STAGES[:-1] for name in rundir.OUTPUTS[stage]])
    html = render_report(run_dir)
    with stage_run.outputs() as stage:
        stage.write_text(rundir.REPORT_HTML, html)
    return run_dir / rundir.REPORT_HTML
