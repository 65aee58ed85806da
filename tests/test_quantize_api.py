"""quantize_run on real trained runs (the shared fixtures), the report, and `elman inspect`."""

import json
import shutil

import numpy as np
import pytest
from elman.data.spec import load_run_data
from elman.quantize.ir import QuantizedModel
from elman.quantize.keras_model import read_keras, read_keras_file
from elman.quantize.reader import read_ir
from elman.quantize.step_model import CRASH_ENV
from typer.testing import CliRunner

from elman import rundir
from elman.cli import app


def test_bm_run_state_is_pinned_and_metadata_matches_the_data(bm_run):
    ir = read_ir(bm_run / rundir.MODEL_TFLITE)
    data = load_run_data(bm_run)
    spec = json.loads((bm_run / rundir.DATA_SPEC).read_text())["input"]["normalization"]
    assert (ir.state_quant.scale, ir.state_quant.zero_point) == (1 / 128, 0)
    assert (ir.layers[0].tanh.output.scale, ir.layers[0].tanh.output.zero_point) == (1 / 128, 0)
    assert ir.task == "classification"
    assert ir.labels == tuple(data.classes)
    assert (ir.input_dim, ir.layer_units, ir.output_dim) == (6, (16,), 4)
    np.testing.assert_array_equal(ir.norm_mean, np.float32(spec["mean"]))
    np.testing.assert_array_equal(ir.norm_std, np.float32(spec["std"]))
    assert ir.embedding is None
    # ADD's output range is clamped where TANH saturates (|z| <= 3.2)
    z = ir.layers[0].add.output
    lo, hi = z.dequantize(np.array([-128, 127]))
    assert -3.2 - z.scale <= lo < 0 < hi <= 3.2 + z.scale


def test_bm_report_numbers_are_reproducible(bm_run):
    """The report's float accuracy is the Keras model's; its int8 accuracy is the file's."""
    import keras

    report = json.loads((bm_run / rundir.QUANT_REPORT).read_text())
    data = load_run_data(bm_run)
    model = keras.saving.load_model(bm_run / rundir.MODEL_KERAS, compile=False)
    keras_logits = np.asarray(model(data.x_test))
    found = read_keras(model, "classification")
    y_float = found.model.run(data.x_test).logits
    np.testing.assert_allclose(y_float[:, -1], keras_logits, atol=1e-4)
    ev = report["evaluation"]
    assert ev["metrics"]["float"]["accuracy"] == float(
        (keras_logits.argmax(1) == data.y_test).mean())

    from ai_edge_litert.interpreter import Interpreter

    ir = read_ir(bm_run / rundir.MODEL_TFLITE)
    it = Interpreter(model_path=str(bm_run / rundir.MODEL_TFLITE))
    it.allocate_tensors()
    ins, outs = it.get_input_details(), it.get_output_details()
    x_q = ir.input_quant.quantize(data.x_test)
    correct = 0
    for seq, label in zip(x_q, data.y_test, strict=True):
        h = np.zeros((1, ir.state_bytes), np.int8)
        for x in seq:
            it.set_tensor(ins[ir.signature.x_input]["index"], x[None])
            it.set_tensor(ins[ir.signature.h_inputs[0]]["index"], h)
            it.invoke()
            h = it.get_tensor(outs[ir.signature.h_outputs[0]]["index"])
        y = it.get_tensor(outs[ir.signature.y_output]["index"])
        correct += int(y.argmax() == label)
    assert ev["metrics"]["int8"]["accuracy"] == correct / len(data.y_test)
    assert len(ev["hidden_error"]["by_step"]["mean"]) == data.x_test.shape[1]
    assert report["model"]["tflite_bytes"] == (bm_run / rundir.MODEL_TFLITE).stat().st_size
    assert report["quantization"]["state"]["scale"] == 0.0078125


def test_text_run_embedding_is_the_keras_table_quantized_with_x(text_run):
    ir = read_ir(text_run / rundir.MODEL_TFLITE)
    data = load_run_data(text_run)
    found = read_keras_file(text_run / rundir.MODEL_KERAS, "language_model")
    assert ir.task == "language_model"
    assert ir.labels == tuple(data.vocab)
    assert ir.embedding.shape == found.model.embedding.shape == (len(data.vocab), 8)
    np.testing.assert_array_equal(ir.embedding, ir.input_quant.quantize(found.model.embedding))
    assert (ir.state_quant.scale, ir.state_quant.zero_point) == (1 / 128, 0)
    report = json.loads((text_run / rundir.QUANT_REPORT).read_text())
    ev = report["evaluation"]
    assert ev["stream_steps"] == len(data.val_ids) - 1
    assert sum(w["steps"] for w in ev["drift"]["windows"]) == ev["stream_steps"]
    m = ev["metrics"]
    assert m["float"]["bits_per_char"] == pytest.approx(m["float"]["nll"] / np.log(2))
    assert m["bits_per_char_increase"] == pytest.approx(
        m["int8"]["bits_per_char"] - m["float"]["bits_per_char"])


def test_quantize_ir_json_ir_round_trip(bm_run, text_run):
    for run in (bm_run, text_run):
        ir = read_ir(run / rundir.MODEL_TFLITE)
        again = QuantizedModel.from_json(ir.to_json())
        assert again == ir and again.to_json() == ir.to_json()


def test_inspect_prints_the_ir_and_its_json(bm_run, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["inspect", str(bm_run)])
    assert result.exit_code == 0, result.output
    assert "h state:  int8, scale 0.0078125, zero point 0" in result.output
    assert "FC(x): 16 x 6 int8 weights" in result.output
    result = runner.invoke(app, ["inspect", "--json", str(bm_run / rundir.MODEL_TFLITE)])
    assert result.exit_code == 0
    ir = QuantizedModel.from_json(result.output)
    assert ir == read_ir(bm_run / rundir.MODEL_TFLITE)
    (tmp_path / "ir.json").write_text(result.output)
    again = runner.invoke(app, ["inspect", "--json", str(tmp_path / "ir.json")])
    assert again.exit_code == 0 and again.output == result.output


def test_inspect_text_run_shows_vocabulary_and_embedding(text_run, tmp_path):
    runner = CliRunner()
    ir = read_ir(text_run / rundir.MODEL_TFLITE)
    result = runner.invoke(app, ["inspect", str(text_run)])
    assert result.exit_code == 0, result.output
    assert f"vocabulary ({ir.vocab_size} tokens)" in result.output
    assert f"embedding: {ir.vocab_size} x 8 int8" in result.output
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["inspect", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "run `elman quantize" in result.output


def _bad_files(bm_run, tmp_path):
    from test_quantize_step_model import tiny_conv_tflite

    good = (bm_run / rundir.MODEL_TFLITE).read_bytes()
    files = {
        "truncated.tflite": (good[: len(good) * 2 // 3], "corrupt or truncated"),
        "random.tflite": (np.random.default_rng(1).bytes(2048), "not a TFLite model"),
        "conv.tflite": (tiny_conv_tflite(), "operators an elman step model does not: CONV_2D"),
        "ir.json": (b'{"format_version": 1}', "not an elman IR JSON file"),
    }
    for name, (data, _) in files.items():
        (tmp_path / name).write_bytes(data)
    return {tmp_path / name: message for name, (_, message) in files.items()}


def test_inspect_refuses_bad_files_with_one_message(bm_run, tmp_path):
    runner = CliRunner()
    for path, message in _bad_files(bm_run, tmp_path).items():
        result = runner.invoke(app, ["inspect", str(path)])
        assert result.exit_code == 1, path
        assert "error: " in result.output and message in result.output, result.output
        assert "Traceback" not in result.output


def test_quantize_cli_prints_the_table_and_writes_both_files(bm_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(bm_run, run)
    (run / rundir.MODEL_TFLITE).unlink()
    (run / rundir.QUANT_REPORT).unlink()
    result = CliRunner().invoke(app, ["quantize", "--no-progress", str(run)])
    assert result.exit_code == 0, result.output
    report = json.loads((run / rundir.QUANT_REPORT).read_text())
    m = report["evaluation"]["metrics"]
    assert f"{m['float']['accuracy']:.4f}" in result.output
    assert "state quantization: scale 0.0078125 zero point 0 (pinned)" in result.output
    assert read_ir(run / rundir.MODEL_TFLITE).labels == read_ir(bm_run / rundir.MODEL_TFLITE).labels
    # same weights, same data, same calibration: the same bytes
    assert (run / rundir.MODEL_TFLITE).read_bytes() == (bm_run / rundir.MODEL_TFLITE).read_bytes()


def test_quantize_crash_leaves_nothing_half_written(bm_run, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(bm_run, run)
    (run / rundir.MODEL_TFLITE).unlink()
    (run / rundir.QUANT_REPORT).unlink()
    monkeypatch.setenv(CRASH_ENV, "SIGSEGV")
    result = CliRunner().invoke(app, ["quantize", "--no-progress", str(run)])
    assert result.exit_code == 1
    assert "converter crashed (SIGSEGV)" in result.output
    assert not (run / rundir.MODEL_TFLITE).exists()
    assert not (run / rundir.QUANT_REPORT).exists()
    assert not [p for p in run.iterdir() if p.name.startswith(".staging")]


def test_quantize_rejects_a_bad_input_percentile(bm_run):
    result = CliRunner().invoke(app, ["quantize", "--input-percentile", "30", str(bm_run)])
    assert result.exit_code == 1 and "input percentile must be in (50, 100]" in result.output


def test_quantize_needs_a_trained_run(tmp_path):
    result = CliRunner().invoke(app, ["quantize", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "does not exist" in result.output
    tmp_path.joinpath("empty").mkdir()
    result = CliRunner().invoke(app, ["quantize", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "run `elman train" in result.output
