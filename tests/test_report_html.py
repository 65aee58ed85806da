"""report.html: self-contained, and rendered by a real headless browser (Debian's chromium)."""

from __future__ import annotations

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
