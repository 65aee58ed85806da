"""Classifier defaults chosen on hard data (bench/data_defaults.py): input noise, and
epochs that follow the data (at least ``updates_per_class`` updates per class)."""

import json

import numpy as np
import pytest
from elman.train.config import TASK_DEFAULTS, TrainConfig
from typer.testing import CliRunner

from elman.cli import app


@pytest.mark.parametrize("sequences, classes, epochs", [
    (40, 4, 200),   # BasicMotions: 5 updates per epoch, 1,000 wanted (600 per class)
    (50, 2, 143),   # GunPoint: 7 per epoch, 1,000 wanted (300 per class)
    (50, 10, 215),  # PickupGestureWiimoteZ: 7 per epoch, 1,500 wanted (150 per class)
    (1000, 3, 60),  # plenty of data: the default epochs
    (3, 2, 1000),   # fewer sequences than a batch: one update per epoch
])
def test_epochs_follow_the_training_data(sequences, classes, epochs):
    cfg = TrainConfig().resolved("classification")
    assert (cfg.noise, cfg.updates_per_class, cfg.min_updates, cfg.epochs) == (0.1, 150, 1000, 60)
    assert cfg.classifier_epochs(sequences, classes) == epochs
    off = TrainConfig(updates_per_class=0, min_updates=0).resolved("classification")
    assert off.classifier_epochs(sequences, classes) == 60
    per_class = TrainConfig(min_updates=0).resolved("classification")
    assert per_class.classifier_epochs(50, 2) == 60  # 420 updates >= 300
    assert TASK_DEFAULTS["language_model"]["noise"] == 0.0


def test_updates_per_class_must_not_be_negative():
    from elman.errors import ElmanError

    with pytest.raises(ElmanError, match="--updates-per-class must be >= 0, got -1"):
        TrainConfig(updates_per_class=-1).resolved("classification")
    with pytest.raises(ElmanError, match="--min-updates must be >= 0, got -1"):
        TrainConfig(min_updates=-1).resolved("classification")


def _tiny(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(20) % 2
    x = rng.normal(size=(20, 5)) + y[:, None]  # (N, T): one channel
    np.savez(tmp_path / "tiny.npz", x=x[:16], y=y[:16], x_test=x[16:], y_test=y[16:])
    return f"npz:{tmp_path / 'tiny.npz'}"


def _train(tmp_path, data, name, *options):
    run = tmp_path / name
    result = CliRunner().invoke(app, ["train", "--data", data, str(run), "--no-progress",
                                      "--units", "4", "--batch", "8", "--no-diagnostics",
                                      *options])
    assert result.exit_code == 0, result.output
    return json.loads((run / "train_report.json").read_text())


def test_train_without_epochs_makes_the_updates_per_class(tmp_path):
    data = _tiny(tmp_path)
    # 16 sequences in batches of 8: 2 updates per epoch; 2 classes x 70 = 140 updates
    report = _train(tmp_path, data, "auto", "--updates-per-class", "70", "--min-updates", "0")
    assert report["config"]["epochs"] == 70 and len(report["epochs"]) == 70
    assert report["throughput"]["updates"] == 140
    assert report["config"]["noise"] == 0.1
    # at least --min-updates in all: 150 updates, 75 epochs
    report = _train(tmp_path, data, "floor", "--updates-per-class", "70", "--min-updates", "150")
    assert report["config"]["epochs"] == 75 and report["throughput"]["updates"] == 150
    # --epochs is obeyed as given
    report = _train(tmp_path, data, "given", "--updates-per-class", "70", "--epochs", "3")
    assert report["config"]["epochs"] == 3 and report["throughput"]["updates"] == 6
