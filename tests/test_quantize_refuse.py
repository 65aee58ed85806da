"""Unsupported Keras models are refused before conversion, every problem in one message."""

import shutil

import pytest
from typer.testing import CliRunner

from elman import rundir
from elman.cli import app


def _keras():
    import keras

    return keras


def _model(body):
    keras = _keras()
    inputs = keras.Input(shape=(None, 6), name="x")
    return keras.Model(inputs, body(keras.layers, inputs))


REFUSED = {
    "lstm": (lambda L, x: L.Dense(4, name="head")(L.LSTM(8, name="rnn")(x)),
             ["layer 'rnn' is LSTM: elman supports SimpleRNN (Elman) cells only"]),
    "gru": (lambda L, x: L.Dense(4, name="head")(L.GRU(8, name="rnn")(x)),
            ["layer 'rnn' is GRU"]),
    "relu": (lambda L, x: L.Dense(4, name="head")(L.SimpleRNN(8, activation="relu",
                                                              name="rnn")(x)),
             ["layer 'rnn' uses activation 'relu'; elman needs tanh"]),
    "four_rnns": (lambda L, x: L.Dense(4, name="head")(
        L.SimpleRNN(8, name="r4")(L.SimpleRNN(8, return_sequences=True, name="r3")(
            L.SimpleRNN(8, return_sequences=True, name="r2")(
                L.SimpleRNN(8, return_sequences=True, name="r1")(x))))),
        ["the model has 4 recurrent layers (r1, r2, r3, r4); elman supports 1 to 3"]),
    "branch": (lambda L, x: L.Dense(4, name="head")(L.Add(name="add")(
        [L.SimpleRNN(8, name="rnn1")(x), L.SimpleRNN(8, name="rnn2")(x)])),
        ["layer 'add' reads 2 tensors"]),
    "return_state": (lambda L, x: L.Dense(4, name="head")(
        L.SimpleRNN(8, return_state=True, name="rnn")(x)[0]),
        ["layer 'rnn' has return_state=True"]),
    "sigmoid_head": (lambda L, x: L.Dense(4, activation="sigmoid", name="head")(
        L.SimpleRNN(8, name="rnn")(x)),
        ["head 'head' uses activation 'sigmoid'; elman's head is linear (logits) or softmax"]),
    "dense_between": (lambda L, x: L.Dense(4, name="head")(L.Dense(8, name="mid")(
        L.SimpleRNN(8, name="rnn")(x))),
        ["layer 'head' (Dense) is not the one head after the recurrent layers"]),
    "no_head": (lambda L, x: L.SimpleRNN(4, name="rnn")(x),
                ["the model has no Dense head after the recurrent layer"]),
    "no_bias_and_conv": (lambda L, x: L.Dense(4, name="head")(L.SimpleRNN(
        8, use_bias=False, name="rnn")(L.Conv1D(6, 3, padding="same", name="conv")(x))),
        ["layer 'rnn' has no bias (use_bias=False)",
         "layer 'conv' (Conv1D) is not supported"]),
    "everything_wrong": (lambda L, x: L.Dense(4, activation="relu", name="head")(
        L.LSTM(8, name="lstm")(L.SimpleRNN(8, activation="sigmoid", return_sequences=True,
                                           name="rnn")(L.Dense(6, name="pre")(x)))),
        ["layer 'lstm' is LSTM", "layer 'pre' (Dense) is not the one head",
         "layer 'rnn' uses activation 'sigmoid'", "head 'head' uses activation 'relu'"]),
}


@pytest.fixture(scope="module")
def spec_only_run(bm_run, tmp_path_factory):
    """A run directory with bm_run's real data spec but no model yet."""
    run = tmp_path_factory.mktemp("refuse") / "run"
    run.mkdir()
    shutil.copy(bm_run / rundir.DATA_SPEC, run / rundir.DATA_SPEC)
    return run


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_unsupported_model_is_refused_with_every_problem(name, spec_only_run, tmp_path):
    body, expected = REFUSED[name]
    run = tmp_path / "run"
    shutil.copytree(spec_only_run, run)
    _model(body).save(run / rundir.MODEL_KERAS)
    result = CliRunner().invoke(app, ["quantize", "--no-progress", str(run)])
    assert result.exit_code == 1, result.output
    assert "cannot be quantized by elman:" in result.output
    for message in expected:
        assert message in result.output, result.output
    assert result.output.count("error: ") == 1
    assert "Traceback" not in result.output
    assert not (run / rundir.MODEL_TFLITE).exists()
    assert not (run / rundir.QUANT_REPORT).exists()


def test_wrong_input_size_is_refused(spec_only_run, tmp_path):
    keras = _keras()
    inputs = keras.Input(shape=(None, 3))
    out = keras.layers.Dense(4, name="head")(keras.layers.SimpleRNN(8, name="rnn")(inputs))
    run = tmp_path / "run"
    shutil.copytree(spec_only_run, run)
    keras.Model(inputs, out).save(run / rundir.MODEL_KERAS)
    result = CliRunner().invoke(app, ["quantize", "--no-progress", str(run)])
    assert result.exit_code == 1
    assert "the model takes 3 input channels, the run's data has 6" in result.output


def test_unreadable_model_file_is_refused(spec_only_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(spec_only_run, run)
    (run / rundir.MODEL_KERAS).write_bytes(b"not a zip archive")
    result = CliRunner().invoke(app, ["quantize", "--no-progress", str(run)])
    assert result.exit_code == 1
    assert "is not a Keras model" in result.output and "Traceback" not in result.output
