"""The vanishing-gradient curve (numpy) against TensorFlow autodiff, and the KN baseline."""

import json
import math

import numpy as np
import pytest
from elman.data.datasets import load_dataset
from elman.train.diagnostics import grad_norms_by_distance
from elman.train.kneser_ney import KneserNey

tf = pytest.importorskip("tensorflow")


@pytest.mark.parametrize("units", [(10,), (7, 5), (4, 6, 3)], ids=["1", "2", "3"])
def test_grad_norm_vs_distance_matches_autodiff(units):
    import keras
    from elman.quantize.keras_model import read_keras

    keras.utils.set_random_seed(1)
    L = keras.layers
    rnns = [L.SimpleRNN(u, return_sequences=i < len(units) - 1) for i, u in enumerate(units)]
    model = keras.Sequential([keras.Input((None, 6)), *rnns, L.Dense(4)])
    data = load_dataset("sensor:basicmotions")
    x, y = data.x_test[:5, :30], data.y_test[:5]
    float_model = read_keras(model).model
    norms = grad_norms_by_distance(float_model, x.astype(np.float64), y)

    xs = tf.constant(x, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(xs)
        hs = [tf.zeros((5, u), tf.float64) for u in units]
        states = []
        for t in range(30):
            layer_in = xs[:, t]
            for i, rnn in enumerate(rnns):
                kernel, recurrent, bias = (w.astype(np.float64) for w in rnn.get_weights())
                hs[i] = tf.tanh(layer_in @ kernel + bias + hs[i] @ recurrent)
                layer_in = hs[i]
            states.append(list(hs))
        w_y, b_y = model.layers[-1].get_weights()
        logits = layer_in @ w_y.astype(np.float64) + b_y
        loss = tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )
    grads = tape.gradient(loss, states)
    expected = np.stack([np.sqrt(sum(np.linalg.norm(g.numpy(), axis=1) ** 2
                                     for g in grads[29 - d])) for d in range(30)], axis=1)
    np.testing.assert_allclose(norms, expected, rtol=1e-9)
    # the numpy forward pass is the Keras model's
    keras_h = x
    for rnn in rnns:
        keras_h = rnn(keras_h)
    np.testing.assert_allclose(float_model.run(x).states[-1][:, -1], keras_h.numpy(), atol=1e-5)


@pytest.fixture(scope="module")
def small_text():
    return load_dataset("text:fortunes", max_chars=30000)


def test_kneser_ney_distributions_sum_to_one(small_text):
    model = KneserNey(small_text.train_ids, small_text.vocab_size, 4)
    prefix = small_text.val_ids[:40]
    for cut in (0, 3, 17, 40):
        candidates = np.concatenate(
            [np.tile(prefix[:cut], (small_text.vocab_size, 1)),
             np.arange(small_text.vocab_size)[:, None]], axis=1,
        )  # fmt: skip
        total = sum(model.probabilities(row.astype(np.int32))[-1] for row in candidates)
        assert total == pytest.approx(1.0, abs=1e-9)


def test_kneser_ney_sizes_count_distinct_ngrams_and_orders_improve(small_text):
    ids = small_text.train_ids
    results = {}
    for order in (1, 2, 3):
        model = KneserNey(ids, small_text.vocab_size, order)
        padded = [-1] * (order - 1) + ids.tolist()
        for m in range(1, order + 1):
            distinct = {tuple(padded[i - m + 1 : i + 1]) for i in range(order - 1, len(padded))}
            assert model.size()["entries_per_order"][str(m)] == len(distinct)
        results[order] = model.evaluate(small_text.val_ids)
    ppl = [results[o]["val_perplexity"] for o in (1, 2, 3)]
    assert ppl[0] > ppl[1] > ppl[2] > 1
    assert results[3]["val_bits_per_char"] == pytest.approx(math.log2(ppl[2]))


# ---- the curve's work is capped by size; a failing diagnostic never costs the model -------


def _curve_weights(units=6, inputs=3, outputs=4, seed=0, layers=1):
    from elman.quantize.float_model import ElmanLayer, FloatElman

    rng = np.random.default_rng(seed)
    stack = [ElmanLayer(rng.normal(0, 0.5, (inputs if i == 0 else units, units)),
                        rng.normal(0, 0.4, (units, units)), rng.normal(0, 0.1, units))
             for i in range(layers)]
    return FloatElman(tuple(stack), rng.normal(0, 0.5, (units, outputs)),
                      rng.normal(0, 0.1, outputs))


@pytest.mark.parametrize("layers", [1, 2])
def test_the_curve_keeps_only_the_states_it_needs_and_gives_the_same_norms(layers):
    weights = _curve_weights(layers=layers)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(7, 40, 3)), rng.integers(0, 4, 7)
    full = grad_norms_by_distance(weights, x, y)
    assert full.shape == (7, 40)
    np.testing.assert_allclose(grad_norms_by_distance(weights, x, y, max_distance=11),
                               full[:, :11], rtol=1e-12)


def test_the_curve_is_capped_by_size_not_by_an_index():
    from elman.train.diagnostics import (
        MAX_SEQUENCES,
        classification_curve,
        sequences_within_budget,
    )

    weights = _curve_weights()
    rng = np.random.default_rng(2)
    for count in (3, 257, 1029):
        x, y = rng.normal(size=(count, 9, 3)), rng.integers(0, 4, count)
        curve = classification_curve(weights, x, y)
        assert curve["sequences"] == min(count, MAX_SEQUENCES)
        assert len(curve["distance"]) == 9
    # long sequences: fewer sequences, distances up to the cap
    assert sequences_within_budget(1000, 2000, _curve_weights(units=256)) < MAX_SEQUENCES
    curve = classification_curve(weights, rng.normal(size=(2, 1500, 3)), np.array([0, 1]))
    assert len(curve["distance"]) == 1000


@pytest.mark.parametrize("test_sequences", [300, 1100])
def test_training_with_many_test_sequences_keeps_the_model(tmp_path, test_sequences):
    """More than 256 (and 1,000) held-out sequences: the curve used to index past its cut."""
    from elman.train.api import TrainConfig, train_run

    rng = np.random.default_rng(3)
    centers = rng.normal(0, 1, (3, 1, 2))
    y, y_test = rng.integers(0, 3, 60), rng.integers(0, 3, test_sequences)
    x = centers[y] + rng.normal(0, 0.5, (60, 6, 2))
    x_test = centers[y_test] + rng.normal(0, 0.5, (test_sequences, 6, 2))
    np.savez(tmp_path / "d.npz", x=x, y=y, x_test=x_test, y_test=y_test)
    run = tmp_path / "run"
    report = train_run(f"npz:{tmp_path / 'd.npz'}", run,
                       TrainConfig(units=4, epochs=1, seed=0), progress=False)
    assert (run / "model.keras").is_file() and (run / "data_spec.json").is_file()
    assert report["warnings"] == []
    assert report["grad_norm_vs_distance"]["sequences"] == 256
    assert sum(map(sum, report["metrics"]["confusion_matrix"])) == test_sequences


def test_a_failing_diagnostic_is_a_warning_and_the_model_is_kept(tmp_path, monkeypatch):
    from elman.train import diagnostics
    from elman.train.api import TrainConfig, train_run

    def broken(*args, **kwargs):
        raise IndexError("index 256 is out of bounds for axis 0 with size 256")

    monkeypatch.setattr(diagnostics, "classification_curve", broken)
    run = tmp_path / "run"
    report = train_run("sensor:basicmotions", run, TrainConfig(units=4, epochs=1, seed=0),
                       progress=False)
    assert (run / "model.keras").is_file() and (run / "data_spec.json").is_file()
    assert report["grad_norm_vs_distance"] == {}
    assert report["warnings"] == [
        "the vanishing-gradient curve failed and was skipped (IndexError: index 256 is out of "
        "bounds for axis 0 with size 256); the trained model is kept"]
    saved = json.loads((run / "train_report.json").read_text())
    assert saved["warnings"] == report["warnings"]
    assert (run / "grad_vs_distance.png").is_file()  # the plot says there is no curve
