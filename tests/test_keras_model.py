"""Keras models are read by structure: every accepted shape's float model equals Keras."""

import numpy as np
import pytest
from elman.quantize.keras_model import read_keras

from elman.errors import ModelError

RNG = np.random.default_rng(0)
X = (RNG.normal(size=(5, 12, 3)) * 2 + 1).astype(np.float32)  # raw sensor values


def _keras():
    import keras

    keras.utils.set_random_seed(0)
    return keras


def _normalization(keras):
    norm = keras.layers.Normalization()
    norm.adapt(X)
    return norm


def _shapes():
    """name -> (layer list after the Input, expected depth, head_steps, head_activation)."""
    def build(L, keras):
        return {
            "softmax": ([L.SimpleRNN(8), L.Dense(4, activation="softmax")], 1, "last",
                        "softmax"),
            "dropout": ([L.SimpleRNN(8, dropout=0.2, recurrent_dropout=0.1), L.Dropout(0.5),
                         L.Dense(4)], 1, "last", "linear"),
            "normalization": ([_normalization(keras), L.SimpleRNN(8), L.Dense(4)], 1, "last",
                              "linear"),
            "masking": ([_normalization(keras), L.Masking(0.0), L.SimpleRNN(8), L.Dense(4)], 1,
                        "last", "linear"),
            "per_step": ([L.SimpleRNN(8, return_sequences=True), L.Dense(4)], 1, "every",
                         "linear"),
            "time_distributed": ([L.SimpleRNN(8, return_sequences=True),
                                  L.TimeDistributed(L.Dense(4, activation="softmax"))], 1,
                                 "every", "softmax"),
            "two_layers": ([L.SimpleRNN(8, return_sequences=True), L.Dropout(0.1),
                            L.SimpleRNN(5), L.Dense(4)], 2, "last", "linear"),
            "three_layers": ([L.SimpleRNN(6, return_sequences=True),
                              L.SimpleRNN(7, return_sequences=True),
                              L.SimpleRNN(5, return_sequences=True), L.Dense(4),
                              L.Softmax()], 3, "every", "softmax"),
        }
    return build


SHAPES = ("softmax", "dropout", "normalization", "masking", "per_step", "time_distributed",
          "two_layers", "three_layers")


@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional"])
@pytest.mark.parametrize("shape", SHAPES)
def test_float_model_equals_keras(shape, functional):
    keras = _keras()
    layers, depth, steps, activation = _shapes()(keras.layers, keras)[shape]
    if functional:
        inputs = keras.Input(shape=(None, 3))
        out = inputs
        for la in layers:
            out = la(out)
        model = keras.Model(inputs, out)
    else:
        model = keras.Sequential([keras.Input(shape=(None, 3)), *layers])
    x = X.copy()
    if shape == "masking":  # padded steps: every raw value at the mean -> normalized 0
        mean = np.asarray(layers[0].mean).reshape(-1)
        x[1, :4] = mean
        x[3, 7] = mean
    found = read_keras(model)
    m = found.model
    assert (m.depth, m.head_steps, m.head_activation) == (depth, steps, activation)
    assert found.task == "classification"
    z = x
    if found.has_normalization:
        z = ((x - found.norm_mean) / found.norm_std).astype(np.float32)
        np.testing.assert_allclose(found.norm_mean, np.asarray(layers[0].mean).reshape(-1),
                                   rtol=1e-6)
    run = m.run(z)
    want = np.asarray(model(x))
    got = m.answers(run.logits)
    if activation == "softmax":
        from elman.quantize.float_model import softmax

        got = softmax(got)
    np.testing.assert_allclose(got, want, atol=2e-5)


def test_notes_say_what_was_folded_and_dropped():
    keras = _keras()
    L = keras.layers
    model = keras.Sequential([keras.Input((None, 3)), _normalization(keras), L.Masking(0.0),
                              L.SimpleRNN(8, dropout=0.2, return_sequences=True),
                              L.SimpleRNN(8), L.Dropout(0.3),
                              L.Dense(4, activation="softmax")])
    found = read_keras(model)
    text = "\n".join(found.notes)
    assert "Dropout 'dropout" in text and "an identity at inference, dropped" in text
    assert "dropout=0.2, recurrent_dropout=0 are identities at inference" in text
    assert "folded into the stored per-channel input normalization" in text
    assert "softmax head: compiled as logits" in text
    assert "Masking" in text and "mask_value=0" in text
    assert found.summary()["layers"] == ["Normalization", "Masking", "SimpleRNN(8)",
                                         "SimpleRNN(8)", "Dropout", "Dense(4)"]


def test_text_model_with_embedding():
    keras = _keras()
    L = keras.layers
    model = keras.Sequential([keras.Input((None,), dtype="int32"), L.Embedding(11, 4),
                              L.SimpleRNN(6, return_sequences=True),
                              L.SimpleRNN(5, return_sequences=True), L.Dense(11)])
    found = read_keras(model)
    assert found.task == "language_model" and found.model.head_steps == "every"
    ids = RNG.integers(0, 11, (2, 9))
    run = found.model.run(found.model.embed(ids))
    np.testing.assert_allclose(run.logits, np.asarray(model(ids)), atol=2e-5)


@pytest.mark.parametrize("layers, message", [
    (lambda L, k: [L.Masking(0.0), _normalization(k), L.SimpleRNN(4), L.Dense(2)],
     "(Masking) comes before the Normalization"),
    (lambda L, k: [L.Dropout(0.1), L.SimpleRNN(4), L.Dense(2)],
     "(Dropout) comes before the recurrent layers"),
    (lambda L, k: [L.SimpleRNN(4, return_sequences=True), L.SimpleRNN(4),
                   L.SimpleRNN(4, return_sequences=True)][:1] + [L.Dense(2), L.Dense(2)],
     "is not the one head"),
])
def test_misplaced_or_incomplete_layers_are_refused(layers, message):
    keras = _keras()
    model = keras.Sequential([keras.Input((None, 3)), *layers(keras.layers, keras)])
    with pytest.raises(ModelError, match="cannot be quantized by elman") as err:
        read_keras(model)
    assert message in str(err.value)


def test_an_unadapted_normalization_is_an_identity_with_a_note():
    keras = _keras()
    L = keras.layers
    model = keras.Sequential([keras.Input((None, 3)), L.Normalization(), L.SimpleRNN(4),
                              L.Dense(2)])
    found = read_keras(model)
    np.testing.assert_array_equal(found.norm_mean, np.zeros(3))
    np.testing.assert_array_equal(found.norm_std, np.ones(3))
    assert any("was it ever adapted?" in note for note in found.notes)


def test_a_language_model_needs_every_step():
    keras = _keras()
    L = keras.layers
    model = keras.Sequential([keras.Input((None,), dtype="int32"), L.Embedding(11, 4),
                              L.SimpleRNN(6), L.Dense(11)])
    with pytest.raises(ModelError, match="a language model answers at every step"):
        read_keras(model)
    with pytest.raises(ModelError, match="not an Embedding"):
        read_keras(model, "classification")
