"""`elman mcu` on a real BasicMotions run: sizes, emulated bit-exactness, TFLM comparison."""

from __future__ import annotations

import json
import shutil

import pytest
from elman.firmware_codegen.arm.api import mcu_run
from elman.targets import known_targets_line
from typer.testing import CliRunner

from elman.cli import app


@pytest.fixture
def bm_copy(bm_run, tmp_path):
    run = tmp_path / "bm"
    shutil.copytree(bm_run, run)
    return run


def test_mcu_run_on_real_sequences_is_bit_exact(bm_copy):
    report = mcu_run(bm_copy, cpus=("cortex-m0plus", "cortex-m4"), opts=("O2", "Os"),
                     profiles=("tflm", "tflite"), limit=2, progress=False)
    assert json.loads((bm_copy / "mcu_report.json").read_text()) == json.loads(
        json.dumps(report))
    assert report["all_bit_exact"] is True
    assert report["data"]["sequences"] == 2 and report["data"]["steps_per_sequence"] > 10
    assert len(report["builds"]) == 8
    model = report["model"]
    for b in report["builds"]:
        assert b["bit_exact"] and b["comparison"]["mismatches"] == 0
        assert b["comparison"]["compared"] >= 2 * report["data"]["steps_per_sequence"] * 4
        # weights/tables hold at least the int8 weights of the three layers
        (units,) = model["layer_units"]
        weights = units * (model["input_dim"] + units + model["output_dim"])
        assert b["weights_tables"] > weights
        assert 0 < b["code"] <= 2048 and b["flash"] >= b["code"] + b["weights_tables"]
        assert b["ram_static"] == 0 and 0 < b["stack_bytes"] < 2048  # no globals
        assert b["state_bytes"] == model["state_bytes"] == units
        assert b["ram"] == b["state_bytes"] + b["stack_bytes"]
        assert b["instructions_per_step_min"] <= b["instructions_per_step"]
        assert b["instructions_per_mac"] == pytest.approx(
            b["instructions_per_step"] / model["macs_per_step"], abs=1e-3)
    by = {(b["profile"], b["cpu"], b["opt"]): b for b in report["builds"]}
    # the DSP path runs the same model in fewer instructions than ARMv6-M
    assert (by["tflm", "cortex-m4", "O2"]["instructions_per_step"]
            < by["tflm", "cortex-m0plus", "O2"]["instructions_per_step"])
    assert by["tflm", "cortex-m4", "Os"]["code"] < by["tflm", "cortex-m4", "O2"]["code"]
    tflm = report["tflm"]
    assert tflm["tflite_bytes"] == (bm_copy / "model_int8.tflite").stat().st_size
    assert tflm["arena_bytes"] > 0 and "measured" in tflm["arena_source"]
    assert tflm["framework_code_bytes"] == 9732 and "published" in tflm["framework_code_source"]


def test_cli_prints_the_table(bm_copy):
    result = CliRunner().invoke(app, ["mcu", str(bm_copy), "--cpu", "cortex-m4", "--opt", "Os",
                                      "--profile", "tflm", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert "cortex-m4" in result.output and "yes" in result.output
    assert "TFLite Micro" in result.output
    assert (bm_copy / "mcu_report.json").exists()


def test_cli_refuses_bad_input_without_writing(bm_copy, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["mcu", str(bm_copy), "--cpu", "cortex-m3"])
    assert result.exit_code == 1
    # one line that names every known target
    assert "unknown cpu 'cortex-m3'" in result.output and known_targets_line() in result.output
    assert not (bm_copy / "mcu_report.json").exists()
    result = runner.invoke(app, ["mcu", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_mcu_run_on_a_real_text_model(text_run, tmp_path):
    run = tmp_path / "text"
    shutil.copytree(text_run, run)
    report = mcu_run(run, cpus=("cortex-m4",), opts=("O2",), profiles=("tflm",), limit=2,
                     progress=False)
    assert report["all_bit_exact"] is True
    assert report["model"]["vocab_size"] > 10
    assert "validation windows" in report["data"]["description"]
    (build,) = report["builds"]
    # the token step looks the input layer up in a table: no input MACs run
    assert build["weights_tables"] > report["model"]["vocab_size"] * report["model"]["state_bytes"]
