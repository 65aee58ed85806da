"""`elman report RUN_DIR`: write the run's report.html from the stages' reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report(
    run_dir: Annotated[Path, typer.Argument(
        help="Run directory with at least train_report.json (every later stage's report "
             "that is there is included).")],
) -> None:
    """Write RUN_DIR/report.html: one self-contained page of plots and tables (no network).

    Every file the page describes is checked against the run's provenance first; the same
    page `elman run` writes as its last stage (`elman run --from report RUN_DIR`).
    """
    from elman.report_html import build_report

    typer.echo(str(build_report(run_dir)))
