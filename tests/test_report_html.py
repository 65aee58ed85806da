"""report.html: self-contained, and rendered by a real headless browser (Debian's chromium)."""

from __future__ import annotations

import re

import pytest
from browser import chromium_dom, external_references, needs_chromium, sections_of

from elman.errors import ElmanError
from elman.report_html import build_report

# ---- a run directory with no reports yet ---------------------------------------------


def test_report_of_an_empty_run_says_what_is_missing(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    html = build_report(run).read_text(encoding="utf-8")
    assert external_references(html) == []
    for name, command in [("train_report.json", "elman train"),
                          ("quant_report.json", "elman quantize"),
                          ("verify_report.json", "elman verify"),
                          ("mcu_report.json", "elman mcu")]:
        assert f"{name} is missing: run `{command} {run}`" in html


def test_report_refuses_a_corrupt_stage_report(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "verify_report.json").write_text("{not json")
    with pytest.raises(ElmanError, match="verify_report.json is not a readable JSON report"):
        build_report(run)
    assert not (run / "report.html").exists()


def test_report_of_a_missing_run_dir_is_an_error(tmp_path):
    with pytest.raises(ElmanError, match="does not exist"):
        build_report(tmp_path / "nope")


@needs_chromium
def test_empty_report_renders_in_chromium(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    dom = chromium_dom(build_report(run), tmp_path)
    assert sections_of(dom) == ["training", "quantization", "task", "verification", "mcu",
                                "files"]
    assert 'data-images=""' in dom


# ---- real runs from the shared fixtures (trained and quantized, no verify / mcu yet) ------


def _report_of_copy(run_fixture, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_fixture, run)
    return run, build_report(run).read_text(encoding="utf-8")


@needs_chromium
def test_text_report_shows_perplexity_drift_and_traces(text_run, tmp_path):
    import json

    run, html = _report_of_copy(text_run, tmp_path)
    quant = json.loads((run / "quant_report.json").read_text())
    ev = quant["evaluation"]
    assert external_references(html) == []
    # perplexity of float and int8 (LiteRT), as measured by quantize
    f, q = ev["metrics"]["float"]["perplexity"], ev["metrics"]["int8"]["perplexity"]
    assert f"<td>perplexity [LiteRT]</td><td class=\"num\">{f:.4g}</td>" \
           f"<td class=\"num\">{q:.4g}</td>" in html
    # the drift table has one row per window of the long stream
    windows = ev["drift"]["windows"]
    assert len(windows) >= 2
    assert html.count("<td class=\"num\">1,000</td>") >= len(windows) - 1
    dom = chromium_dom(run / "report.html", tmp_path)
    images = dict.fromkeys(re.findall(r'data-images="([a-z,]*)"', dom)[0].split(","))
    assert list(images) == ["ok"]  # every picture decoded
    assert "the first 200 validation characters" in dom
    assert "Drift over a long stream" in dom and "validation stream of" in dom
    # stages that have not run say so and name their command
    assert f"verify_report.json is missing: run `elman verify {run}`" in dom
    assert f"mcu_report.json is missing: run `elman mcu {run}`" in dom


def test_elman_report_command_writes_the_page(bm_run, tmp_path):
    """`elman report RUN_DIR` is its own command: the page, its path printed, exit 0; a
    missing run directory is one error line, exit 1."""
    import shutil

    from typer.testing import CliRunner

    from elman.cli import app

    run = tmp_path / "bm"
    shutil.copytree(bm_run, run)
    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(run / "report.html")
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "BasicMotions" in html or "basicmotions" in html
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 1
    assert missing.output.startswith("error: ") and "does not exist" in missing.output
    assert "report" in CliRunner().invoke(app, ["--help"]).output
