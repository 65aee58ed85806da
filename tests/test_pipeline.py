"""`elman run`: the chain of stages, its failures, and its summary — real stages, real data."""

from __future__ import annotations

import shutil

import pytest
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
    result = invoke("--from", "codegen", str(run))
    assert result.exit_code == 1
    assert "error: " in result.output and "model_int8.tflite" in result.output
    assert "Traceback" not in result.output
    assert "[1/4] codegen failed after" in result.output
    assert "verify:" not in result.output  # the chain stopped at codegen
    for name in ("model.keras", "data_spec.json", "train_report.json", "quant_report.json"):
        assert (run / name).read_bytes() == before[name]
    for name in ("c", "verify_report.json", "mcu_report.json", "report.html"):
        assert not (run / name).exists()
