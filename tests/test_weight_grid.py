"""--qat-weights: the saved float model's weights are exactly the converter's int8 weights.

Real training on real BasicMotions, the real TF converter (int8 and 16x8 modes): the
converted weights must equal round(w / scale) of the saved kernels, with scale
max|w| / 127 per output channel, and dequantize back to the kernels themselves.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from elman.quantize.keras_model import read_keras_file
from elman.quantize.reader import read_ir
from elman.train.model import build_model
from elman.train.weight_grid import LEVELS, WeightGridTraining, grid_error, grid_kernels, on_grid
from typer.testing import CliRunner

from elman.cli import app
from elman.pipeline import qat_weights_default


def test_on_grid_puts_every_output_channel_on_its_int8_grid():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (7, 5)).astype(np.float32)
    w[:, 3] = 0.0  # a column of zeros stays zero
    g = on_grid(w)
    assert g.dtype == np.float32 and g.shape == w.shape
    np.testing.assert_array_equal(g[:, 3], 0.0)
    peak = np.abs(w).max(axis=0)
    np.testing.assert_allclose(np.abs(g).max(axis=0), peak, rtol=1e-7)  # the scale is kept
    scale = np.where(peak > 0, peak / LEVELS, 1.0)
    q = g / scale
    np.testing.assert_allclose(q, np.round(q), atol=1e-4)
    assert np.abs(np.round(q)).max() == LEVELS
    assert (np.abs(g - w) <= scale / 2 * (1 + 1e-6)).all()  # the nearest grid point
    assert grid_error(g) < 1e-4 < 0.1 < grid_error(w)


def test_the_straight_through_estimator_accumulates_steps_smaller_than_the_grid():
    """The variables stay on the grid; updates smaller than a grid step move the master copy
    until it crosses to the next grid point (plain rounding after each update would lose
    them)."""
    model = build_model("classification", units=4, input_dim=3, output_dim=2,
                        sequence_outputs=True)
    grid = WeightGridTraining(model)
    variables = grid_kernels(model)
    assert len(variables) == 3  # kernel, recurrent kernel, head
    stacked = build_model("classification", units=4, input_dim=3, output_dim=2, layers=3,
                          sequence_outputs=True)
    assert len(grid_kernels(stacked)) == 7  # every layer's two kernels, and the head
    kernel = variables[0]
    start = kernel.numpy().copy()
    np.testing.assert_array_equal(start, on_grid(grid.master[0]))
    step = np.abs(grid.master[0]).max(axis=0) / LEVELS
    moved = 0
    for _ in range(4):  # 4 x 0.2 steps: the value changes once (at the third)
        kernel.assign(kernel.numpy() + np.float32(0.2) * step[None, :])  # the optimizer
        grid.after_update()
        np.testing.assert_array_equal(kernel.numpy(), on_grid(grid.master[0]))
        moved += int(not np.array_equal(kernel.numpy(), start))
    assert moved >= 1
    assert grid_error(kernel.numpy()) < 1e-4


def test_elman_run_trains_on_the_grid_for_the_int16_state():
    assert qat_weights_default("int16", None) is True
    assert qat_weights_default("int8", None) is False
    assert qat_weights_default("int16", False) is False
    assert qat_weights_default("int8", True) is True


@pytest.fixture(scope="module")
def qat_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("qat") / "run"
    result = CliRunner().invoke(app, ["train", "--data", "sensor:basicmotions", "--units", "12",
                                      "--epochs", "6", "--lr", "1e-2", "--qat-weights",
                                      "--no-diagnostics", "--no-progress", str(run)])
    assert result.exit_code == 0, result.output
    return run


def test_qat_weights_are_recorded_in_the_train_report(qat_run):
    report = json.loads((qat_run / "train_report.json").read_text())
    assert report["config"]["qat_weights"] is True
    grid = report["weight_grid"]
    updates = report["clipping"]["updates"]
    assert updates == 30  # 40 sequences in batches of 8, 6 epochs
    assert grid["qat_weights"] is True and grid["fraction"] == 0.2
    assert grid["from_update"] == 24 and grid["updates_on_grid"] == 6
    assert grid["max_off_grid_steps"] < 1e-3
    # the reported test accuracy is the saved (on-grid) model's
    from elman.data.spec import load_run_data

    data = load_run_data(qat_run)
    model = read_keras_file(qat_run / "model.keras", "classification").model
    logits = model.run(np.asarray(data.x_test, np.float32)).logits[:, -1]
    accuracy = float((logits.argmax(-1) == data.y_test).mean())
    assert report["metrics"]["test_accuracy"] == accuracy


@pytest.mark.parametrize("state", ["int8", "int16"])
def test_the_converter_keeps_the_on_grid_weights_exactly(qat_run, tmp_path, state):
    from elman.quantize.api import quantize_run

    run = tmp_path / "run"
    shutil.copytree(qat_run, run)
    (run / "provenance.json").unlink()
    quantize_run(run, progress=False, state=state)
    ir = read_ir(run / "model_int8.tflite")
    model = read_keras_file(run / "model.keras", ir.task).model
    layer, float_layer = ir.layers[0], model.layers[0]
    pairs = [(layer.input_fc, float_layer.kernel),
             (layer.recurrent_fc, float_layer.recurrent_kernel), (ir.head.fc, model.head_kernel)]
    for fc, kernel in pairs:
        kernel = np.asarray(kernel, np.float32)
        scale = np.abs(kernel.astype(np.float64)).max(axis=0) / LEVELS
        np.testing.assert_allclose(fc.weight_scales, scale, rtol=1e-6)
        np.testing.assert_array_equal(fc.weights, np.round(kernel.T / scale[:, None]))
        dequantized = fc.weights.astype(np.float64) * fc.weight_scales[:, None]
        np.testing.assert_allclose(dequantized, kernel.T, rtol=1e-6, atol=0)
    report = json.loads((run / "quant_report.json").read_text())
    rounding = report["quantization"]["weight_rounding"]
    assert rounding["on_grid"] is True and rounding["max_steps"] < 1e-3
    if state == "int16":  # only the state's arithmetic is left: far below one int8 step
        assert report["evaluation"]["hidden_error"]["max"] < 1 / 128
        from elman.quantize.api import summary_table

        assert "off the int8 grid" not in summary_table(report)


def test_a_model_trained_without_it_is_reported_off_the_grid(bm_run):
    report = json.loads((bm_run / "quant_report.json").read_text())
    rounding = report["quantization"]["weight_rounding"]
    assert rounding["on_grid"] is False and 0.4 < rounding["max_steps"] <= 0.5 + 1e-4


@pytest.mark.slow
def test_elman_run_state_int16_trains_on_the_grid_and_verifies_bit_exact(tmp_path):
    """`elman run --state int16`: --qat-weights by default, every stage real, every pair of
    verify bit-exact on the on-grid model."""
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--data", "sensor:basicmotions", "--units", "8",
                                      "--epochs", "2", "--limit", "8", "--cpu", "cortex-m4",
                                      "--state", "int16", "--quiet", str(run)])
    assert result.exit_code == 0, result.output
    train = json.loads((run / "train_report.json").read_text())
    assert train["config"]["qat_weights"] is True
    assert train["weight_grid"]["from_update"] == 8 and train["weight_grid"]["updates_on_grid"] == 2
    quant = json.loads((run / "quant_report.json").read_text())
    assert quant["quantization"]["state_bits"] == 16
    assert quant["quantization"]["weight_rounding"]["on_grid"] is True
    verify = json.loads((run / "verify_report.json").read_text())
    assert verify["ok"] and all(p["mismatches"] == 0 and p["compared"] > 0
                                for p in verify["pairs"])
