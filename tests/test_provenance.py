"""Provenance: stale or changed inputs are refused, retraining removes what the old model made.

Real stages on real data (the session's BasicMotions run, copied).
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from elman.cli import app


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture()
def run(bm_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(bm_run, copy)
    return copy


def _one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_every_stage_records_what_it_read_and_wrote(run):
    from elman.provenance import sha256_file

    ledger = json.loads((run / "provenance.json").read_text())
    train, quant = ledger["stages"]["train"], ledger["stages"]["quantize"]
    for name in ("model.keras", "data_spec.json", "train_report.json"):
        assert train["outputs"][name] == sha256_file(run / name)
    assert quant["inputs"] == {"data_spec.json": sha256_file(run / "data_spec.json"),
                               "model.keras": sha256_file(run / "model.keras")}
    assert quant["outputs"] == {"model_int8.tflite": sha256_file(run / "model_int8.tflite"),
                                "quant_report.json": sha256_file(run / "quant_report.json")}
    report = json.loads((run / "quant_report.json").read_text())
    assert report["provenance"] == {"stage": "quantize", "inputs": quant["inputs"],
                                    "ledger": "provenance.json"}
    assert invoke("codegen", str(run)).exit_code == 0
    codegen = json.loads((run / "provenance.json").read_text())["stages"]["codegen"]
    assert codegen["inputs"] == {"model_int8.tflite": quant["outputs"]["model_int8.tflite"]}
    assert sorted(codegen["outputs"]) == ["c/elman_io.c", "c/elman_model.c", "c/elman_model.h",
                                          "c/elman_weights.h"]
    assert codegen["rerun"] == "elman codegen {run_dir}"  # wherever the directory is now


def test_a_hand_edited_normalization_is_refused(run):
    spec = json.loads((run / "data_spec.json").read_text())
    spec["input"]["normalization"]["mean"][0] += 0.5
    (run / "data_spec.json").write_text(json.dumps(spec, indent=2))
    for command in ("quantize", "verify", "mcu"):
        line = _one_error_line(invoke(command, str(run)))
        assert re.fullmatch(
            rf"error: {re.escape(str(run / 'data_spec.json'))} changed since `elman train` "
            r"wrote it \(SHA-256 [0-9a-f]{12}…, now [0-9a-f]{12}…\): rerun "
            rf"`elman train --data sensor:basicmotions {re.escape(str(run))}` "
            r"\(and the stages after it\)", line), line


def test_another_model_copied_in_is_refused_before_what_was_made_from_it(run, text_run):
    shutil.copy(text_run / "model.keras", run / "model.keras")
    before = (run / "model_int8.tflite").read_bytes()
    line = _one_error_line(invoke("codegen", str(run)))  # reads only the .tflite
    assert line.startswith(f"error: {run / 'model.keras'} changed since `elman train` wrote it")
    assert not (run / "c").exists()
    assert (run / "model_int8.tflite").read_bytes() == before


def test_an_old_tflite_put_back_after_retraining_is_refused(run):
    old = (run / "model_int8.tflite").read_bytes()
    result = invoke("train", "--units", "4", "--epochs", "1", str(run))
    assert result.exit_code == 0, result.output
    assert not (run / "model_int8.tflite").exists()
    (run / "model_int8.tflite").write_bytes(old)
    assert _one_error_line(invoke("codegen", str(run))) == (
        f"error: {run / 'model_int8.tflite'} was put back by hand: `elman train` removed it "
        f"(made from files it replaced) and no stage has written it since: rerun "
        f"`elman quantize {run}`")


def test_an_output_made_from_an_older_input_is_stale(tmp_path):
    """The ledger's second check: the producer's own inputs are still the files it read."""
    from elman.provenance import ProvenanceError, begin, sha256_file

    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"new model")
    (run / "model_int8.tflite").write_bytes(b"int8 of the old model")
    (run / "provenance.json").write_text(json.dumps({"format": "elman-provenance/1", "stages": {
        "train": {"rerun": "elman train --data sensor:gunpoint {run_dir}", "inputs": {},
                  "outputs": {"model.keras": sha256_file(run / "model.keras")}},
        "quantize": {"rerun": "elman quantize {run_dir}",
                     "inputs": {"model.keras": "0" * 64},
                     "outputs": {"model_int8.tflite": sha256_file(run / "model_int8.tflite")}},
    }}))
    with pytest.raises(ProvenanceError) as caught:
        begin(run, "codegen", reads=["model_int8.tflite"])
    assert str(caught.value) == (
        f"{run / 'model_int8.tflite'} is stale: `elman quantize` made it from another "
        f"model.keras than the one now in {run}: rerun `elman quantize {run}`")
    assert begin(run, "quantize", reads=["model.keras"]).inputs == {
        "model.keras": sha256_file(run / "model.keras")}


def test_a_replaced_tflite_is_refused_by_every_later_stage(run, tmp_path):
    other = tmp_path / "other.tflite"
    from elman.quantize.testing import random_step_tflite

    other.write_bytes(random_step_tflite(6, 16, 4, seed=9))
    shutil.copy(other, run / "model_int8.tflite")
    for command in ("codegen", "verify", "mcu"):
        line = _one_error_line(invoke(command, str(run)))
        assert line.startswith(f"error: {run / 'model_int8.tflite'} changed since "
                               "`elman quantize` wrote it"), line
        assert line.endswith(f"rerun `elman quantize {run}` (and the stages after it)")


@pytest.mark.parametrize("ledger", [True, False], ids=["ledger", "made-before-provenance"])
def test_retraining_removes_what_the_old_model_made(run, tmp_path, ledger):
    assert invoke("codegen", str(run)).exit_code == 0
    from elman.report_html import build_report

    build_report(run)
    if not ledger:
        (run / "provenance.json").unlink()
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "other.npz", x=rng.normal(size=(24, 10, 3)), y=np.arange(24) % 2)
    result = invoke("train", "--data", f"npz:{tmp_path / 'other.npz'}", "--units", "4",
                    "--epochs", "1", str(run))
    assert result.exit_code == 0, result.output
    assert (f"train: removed the older c/ (4 files), model_int8.tflite, quant_report.json, "
            f"report.html from {run} (made from files this train replaced)\n") in result.output
    assert sorted(p.name for p in run.iterdir()) == [
        "data_spec.json", "grad_vs_distance.png", "model.keras", "provenance.json",
        "train_curves.png", "train_report.json"]
    assert json.loads((run / "data_spec.json").read_text())["source"].startswith("npz:")
    # the old model's C can no longer be generated or reported
    assert _one_error_line(invoke("codegen", str(run))) == (
        f"error: {run / 'model_int8.tflite'} is missing: run `elman quantize {run}` first")
    assert _one_error_line(invoke("run", "--from", "report", str(run))) == (
        f"error: cannot start at report: {run} has no model_int8.tflite, quant_report.json "
        f"(made by `elman quantize`); start from quantize: `elman run --from quantize {run}`")


def test_run_from_a_stage_refuses_a_directory_without_its_prerequisites(tmp_path, run):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _one_error_line(invoke("run", "--from", "report", str(empty))) == (
        f"error: cannot start at report: {empty} has no model.keras, data_spec.json "
        f"(made by `elman train` or `elman import`); start from train: "
        f"`elman run --data DATA {empty}`")
    assert list(empty.iterdir()) == []
    assert _one_error_line(invoke("run", "--from", "verify", str(run))) == (
        f"error: cannot start at verify: {run} has no c (made by `elman codegen`); "
        f"start from codegen: `elman run --from codegen {run}`")
    (run / "train_report.json").write_text("{}")
    line = _one_error_line(invoke("run", "--from", "quantize", str(run)))
    assert line.startswith(f"error: {run / 'train_report.json'} changed since `elman train`")
