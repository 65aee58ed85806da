"""`elman run`: the chain of stages, its failures, and its summary — real stages, real data."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from browser import (
    chromium_dom,
    chromium_screenshot,
    external_references,
    needs_chromium,
    sections_of,
)
from typer.testing import CliRunner

from elman.cli import app


def invoke(*args: str):
    return CliRunner().invoke(app, ["run", *args])


# ---- checked before any training --------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--prefix", "int"], "C prefix 'int' is a reserved word of C99"),
    (["--cpu", "cortex-m99"], "unknown cpu 'cortex-m99'"),
    (["--opt", "O9"], "unknown optimization level 'O9'"),
    (["--profile", "fast"], "unknown profile 'fast'"),
    (["--from", "deploy"], "unknown stage 'deploy'"),
])
def test_bad_options_fail_before_training(tmp_path, args, message):
    run = tmp_path / "run"
    result = invoke(*args, str(run))
    assert result.exit_code == 1
    assert f"error: {message}" in result.output
    assert "Traceback" not in result.output
    assert not run.exists()


def test_resuming_a_missing_run_dir_is_an_error(tmp_path):
    result = invoke("--from", "codegen", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert "does not exist: start from train" in result.output


# ---- a stage in the middle fails ---------------------------------------------------


def test_a_failing_middle_stage_stops_the_run_and_keeps_earlier_files(bm_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(bm_run, run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    (run / "model_int8.tflite").write_bytes(b"TFL3 this is not a flatbuffer")
    (run / "provenance.json").unlink()  # no ledger: the file reaches the reader's own checks
    result = invoke("--from", "codegen", str(run))
    assert result.exit_code == 1
    assert "error: " in result.output and "model_int8.tflite" in result.output
    assert "Traceback" not in result.output
    assert "[1/4] codegen failed after" in result.output
    assert f"to resume: elman run --from codegen {run}" in result.output
    assert "verify:" not in result.output  # the chain stopped at codegen
    for name in ("model.keras", "data_spec.json", "train_report.json", "quant_report.json"):
        assert (run / name).read_bytes() == before[name]
    for name in ("c", "verify_report.json", "mcu_report.json", "report.html"):
        assert not (run / name).exists()


# ---- the whole chain, end to end, on a tiny model of real data -------------------------

TINY = ["--data", "sensor:basicmotions", "--units", "8", "--epochs", "2", "--limit", "8",
        "--cpu", "cortex-m4", "--quiet"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """`elman run` on BasicMotions with 8 units and 2 epochs (every stage real)."""
    run = tmp_path_factory.mktemp("pipeline") / "run"
    result = invoke(*TINY, str(run))
    return run, result


def test_run_chains_every_stage_and_prints_one_summary(tiny_run):
    run, result = tiny_run
    assert result.exit_code == 0, result.output
    for name in ("model.keras", "data_spec.json", "train_report.json", "model_int8.tflite",
                 "quant_report.json", "c/elman_model.c", "c/elman_model.h",
                 "verify_report.json", "mcu_report.json", "report.html"):
        assert (run / name).is_file(), name
    out = result.output
    verify = json.loads((run / "verify_report.json").read_text())
    mcu = json.loads((run / "mcu_report.json").read_text())
    # every pair, verify's and the emulator's, is in the summary with its status
    pairs = verify["pairs"] + [b["comparison"] for b in mcu["builds"]]
    assert {p["b"] for p in verify["pairs"]} >= {"LiteRT BUILTIN_REF", "TFLite Micro"}
    assert any("generated C" in p["b"] for p in verify["pairs"])
    assert f"bit-exactness: {len(pairs)} of {len(pairs)} pairs bit-exact" in out
    for p in pairs:
        assert re.search(rf"{re.escape(p['a'])} vs {re.escape(p['b'])}\s+"
                         rf"{p['compared']:,}\s+0\s+0\s+bit-exact", out), p
    # the task metric: float, int8 (simulator) and the C, on the same held-out data
    float_vs_int8 = verify["float_vs_int8"]
    for fl in float_vs_int8 if isinstance(float_vs_int8, list) else [float_vs_int8]:
        m = fl["metrics"]
        assert re.search(rf"accuracy \[{fl['profile']}\]\s+{m['float_accuracy']:.3f}\s+"
                         rf"{m['int8_accuracy']:.3f}\s+{m['int8_accuracy']:.3f}\n", out), fl
    # flash, RAM and instructions per step of every build
    for b in mcu["builds"]:
        assert re.search(rf"{b['profile']} {b['cpu']} -{b['opt']}\s+{b['flash']:,}\s+"
                         rf"{b['code']:,}\s+{b['weights_tables']:,}", out), b
    assert {(b["cpu"], b["profile"]) for b in mcu["builds"]} == {
        ("cortex-m4", "tflm"), ("cortex-m4", "tflite")}
    assert f"{run / 'report.html'}" in out


@needs_chromium
def test_report_of_a_real_run_renders_in_chromium(tiny_run, tmp_path):
    run, result = tiny_run
    assert result.exit_code == 0, result.output
    html = (run / "report.html").read_text(encoding="utf-8")
    assert external_references(html) == []
    dom = chromium_dom(run / "report.html", tmp_path)
    assert sections_of(dom) == ["training", "quantization", "task", "verification", "mcu",
                                "files"]
    images = re.search(r'data-images="([a-z,]*)"', dom).group(1).split(",")
    # curves, clipping, vanishing gradient, traces, error by step, drift, confusion matrix
    assert images == ["ok"] * 7
    for alt in ("Training curves", "Pre-clip global gradient norm", "vanishing",
                "most active units", "at each step", "back to back", "true class"):
        assert re.search(rf'<img [^>]*alt="[^"]*{alt}', dom, re.IGNORECASE), alt
    assert "MISMATCH" not in dom and "is missing" not in dom
    png = tmp_path / "report.png"
    chromium_screenshot(run / "report.html", png, tmp_path)
    assert png.stat().st_size > 50_000  # a page of tables and plots, not a blank one


def test_run_from_a_later_stage_reuses_the_earlier_files(tiny_run, tmp_path):
    run, result = tiny_run
    assert result.exit_code == 0, result.output
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    model = (copy / "model_int8.tflite").read_bytes()
    again = invoke("--from", "codegen", "--prefix", "gesture", "--profile", "tflm", "--cpu",
                   "cortex-m0plus", "--limit", "2", str(copy))
    assert again.exit_code == 0, again.output
    assert (copy / "model_int8.tflite").read_bytes() == model
    assert (copy / "c" / "gesture_model.h").is_file()
    for stage in ("codegen", "verify", "mcu", "report"):
        assert f"{stage} done in" in again.output
    assert re.findall(r"\[\d/4\] (\w+) done", again.output) == [
        "codegen", "verify", "mcu", "report"]
    assert "emulated cortex-m0plus -O2 vs simulator (tflm)" in again.output


def test_a_stage_failing_after_another_succeeded_leaves_no_stale_outputs(tiny_run, tmp_path):
    run, result = tiny_run
    assert result.exit_code == 0, result.output
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "provenance.json").unlink()  # a run directory of elman 0.1, made before the ledger
    kept = {name: (copy / name).read_bytes() for name in
            ("model.keras", "model_int8.tflite", "train_report.json", "quant_report.json",
             "verify_report.json", "mcu_report.json")}
    (copy / "data_spec.json").write_text("{broken", encoding="utf-8")
    failed = invoke("--from", "codegen", "--prefix", "gesture", str(copy))
    assert failed.exit_code == 1
    assert "data_spec.json: not valid JSON" in failed.output
    assert "[1/4] codegen done in" in failed.output
    assert "[2/4] verify failed after" in failed.output
    # the new C is there; the page that listed the old C is gone; the reports of the
    # same model_int8.tflite stay (nothing they were made from changed)
    assert (copy / "c" / "gesture_model.h").is_file()
    assert not (copy / "report.html").exists()
    for name, data in kept.items():
        assert (copy / name).read_bytes() == data


def test_a_changed_input_is_refused_before_any_stage_runs(tiny_run, tmp_path):
    run, result = tiny_run
    assert result.exit_code == 0, result.output
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    (copy / "data_spec.json").write_text("{broken", encoding="utf-8")
    failed = invoke("--from", "codegen", "--prefix", "gesture", str(copy))
    assert failed.exit_code == 1
    assert failed.output.startswith(f"error: {copy / 'data_spec.json'} changed since "
                                    "`elman train` wrote it")
    assert "codegen" not in failed.output.split("rerun")[0]  # no stage started
    after = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    assert after.keys() == before.keys()
    assert all(after[p] == data for p, data in before.items() if p.name != "data_spec.json")
