"""`elman import` refuses what does not fit, with one message, and writes nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from elman import rundir
from elman.cli import app


def _keras():
    import keras

    keras.utils.set_random_seed(0)
    return keras


def _save(tmp_path, *layers, inputs=(None, 6), dtype="float32", name="m.keras"):
    keras = _keras()
    model = keras.Sequential([keras.Input(inputs, dtype=dtype), *layers])
    path = tmp_path / name
    model.save(path)
    return path


def _import(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["import", *[str(a) for a in args]])
    return result.exit_code, result.output


def _refused(run, *args, message: str) -> None:
    code, out = _import(*args)
    assert code == 1, out
    assert message in out, out
    assert out.count("error: ") == 1 and "Traceback" not in out
    assert not (run / rundir.MODEL_KERAS).exists() and not (run / rundir.DATA_SPEC).exists()


def test_import_writes_the_model_and_a_data_spec_from_the_data(tmp_path):
    L = _keras().layers
    model = _save(tmp_path, L.SimpleRNN(4), L.Dense(4, activation="softmax"))
    run = tmp_path / "run"
    code, out = _import(model, run, "--data", "sensor:basicmotions", "--normalize", "from-data")
    assert code == 0, out
    assert "SimpleRNN(4) -> Dense(4)" in out and "next: elman quantize" in out
    assert (run / rundir.MODEL_KERAS).read_bytes() == model.read_bytes()
    spec = json.loads((run / rundir.DATA_SPEC).read_text())
    from elman.data.datasets import load_dataset

    data = load_dataset("sensor:basicmotions")
    assert spec["task"] == "classification" and spec["classes"] == data.classes
    assert spec["input"]["timesteps"] == 100 and spec["input"]["channels"] == 6
    np.testing.assert_array_equal(spec["input"]["normalization"]["mean"], data.mean)
    assert spec["imported"]["normalization"] == "from-data"
    assert spec["imported"]["keras_model"]["head_activation"] == "softmax"


@pytest.mark.parametrize("layers, data, message", [
    (lambda L: [L.SimpleRNN(4), L.Dense(3)], "sensor:basicmotions",
     "the head has 3 outputs, the data has 4 classes"),
    (lambda L: [L.LSTM(4), L.Dense(4)], "sensor:basicmotions",
     "is LSTM: elman supports SimpleRNN"),
    (lambda L: [L.SimpleRNN(4), L.Dense(4)], "text:fortunes",
     "is text"),
    (lambda L: [L.SimpleRNN(4), L.Dense(4)], "sensor:nosuchdata",
     "unknown built-in data set"),
    (lambda L: [L.SimpleRNN(4), L.Dense(4)], "basicmotions",
     "must look like KIND:NAME"),
])
def test_import_refuses_what_does_not_fit(tmp_path, layers, data, message):
    model = _save(tmp_path, *layers(_keras().layers))
    run = tmp_path / "run"
    _refused(run, model, run, "--data", data, message=message)


def test_import_refuses_wrong_channels_and_double_normalization(tmp_path):
    L = _keras().layers
    run = tmp_path / "run"
    model = _save(tmp_path, L.SimpleRNN(4), L.Dense(4), inputs=(None, 3))
    _refused(run, model, run, "--data", "sensor:basicmotions",
             message="the model takes 3 input channels, the data has 6")
    norm = L.Normalization()
    norm.adapt(np.random.default_rng(0).normal(size=(10, 5, 6)).astype(np.float32))
    model = _save(tmp_path, norm, L.SimpleRNN(4), L.Dense(4), name="n.keras")
    _refused(run, model, run, "--data", "sensor:basicmotions", "--normalize", "from-data",
             message="--normalize from-data would normalize twice")
    model = _save(tmp_path, L.SimpleRNN(4), L.Dense(4), name="p.keras")
    _refused(run, model, run, "--data", "sensor:basicmotions", "--normalize", "layer",
             message="the model has no Normalization layer")
    _refused(run, model, run, "--data", "sensor:basicmotions", "--normalize", "bogus",
             message="--normalize must be one of")


def test_import_refuses_a_text_model_whose_vocabulary_differs(tmp_path):
    L = _keras().layers
    model = _save(tmp_path, L.Embedding(7, 4), L.SimpleRNN(4, return_sequences=True),
                  L.Dense(7), inputs=(None,), dtype="int32")
    run = tmp_path / "run"
    _refused(run, model, run, "--data", "text:fortunes", "--max-chars", "5000",
             message="the model's Embedding has 7 tokens")
    _refused(run, model, run, "--data", "sensor:basicmotions",
             message="(a text model), but sensor:basicmotions is not text")
    _refused(run, model, run, "--data", "text:fortunes", "--normalize", "from-data",
             message="--normalize from-data applies to sensor inputs")


def test_import_into_a_used_run_directory_replaces_the_model(tmp_path):
    L = _keras().layers
    first = _save(tmp_path, L.SimpleRNN(4), L.Dense(4), name="first.keras")
    second = _save(tmp_path, L.SimpleRNN(6), L.Dense(4), name="second.keras")
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    assert _import(first, run, "--data", "sensor:basicmotions")[0] == 0
    code, out = _import(second, run, "--data", "sensor:basicmotions")
    assert code == 0, out
    assert (run / rundir.MODEL_KERAS).read_bytes() == second.read_bytes()
    assert (run / "notes.txt").read_text() == "mine"
    ledger = json.loads((run / rundir.PROVENANCE).read_text())
    assert "elman import" in ledger["stages"]["train"]["rerun"]


def test_import_refuses_a_missing_or_unreadable_model(tmp_path):
    code, out = _import(tmp_path / "nope.keras", tmp_path / "r2", "--data",
                        "sensor:basicmotions")
    assert code == 1 and "does not exist" in out
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    code, out = _import(tmp_path / "bad.keras", tmp_path / "r3", "--data",
                        "sensor:basicmotions")
    assert code == 1 and "is not a Keras model" in out and "Traceback" not in out
    assert not (tmp_path / "r3").exists()
