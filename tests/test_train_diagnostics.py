"""The vanishing-gradient curve (numpy) against TensorFlow autodiff, and the KN baseline."""

import math

import numpy as np
import pytest
from elman.data.datasets import load_dataset
from elman.train.diagnostics import CellWeights, grad_norms_by_distance, hidden_states
from elman.train.kneser_ney import KneserNey

tf = pytest.importorskip("tensorflow")


def test_grad_norm_vs_distance_matches_autodiff():
    import keras
    from elman.train.model import build_model

    keras.utils.set_random_seed(1)
    model = build_model("classification", units=10, input_dim=6, output_dim=4)
    data = load_dataset("sensor:basicmotions")
    x, y = data.x_test[:5, :30], data.y_test[:5]
    weights = CellWeights.from_model(model)
    norms = grad_norms_by_distance(weights, x.astype(np.float64), y)

    kernel, recurrent, bias = model.get_layer("rnn").get_weights()
    w_y, b_y = model.get_layer("head").get_weights()
    xs = tf.constant(x, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(xs)
        h = tf.zeros((5, 10), tf.float64)
        states = []
        for t in range(30):
            h = tf.tanh(
                xs[:, t] @ kernel.astype(np.float64) + bias + h @ recurrent.astype(np.float64)
            )
            states.append(h)
        logits = h @ w_y.astype(np.float64) + b_y
        loss = tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )
    grads = tape.gradient(loss, states)
    expected = np.stack([np.linalg.norm(grads[29 - d].numpy(), axis=1) for d in range(30)], axis=1)
    np.testing.assert_allclose(norms, expected, rtol=1e-9)
    # the numpy forward pass is the Keras layer's
    keras_h = model.get_layer("rnn")(x)
    np.testing.assert_allclose(hidden_states(weights, x)[:, -1], keras_h.numpy(), atol=1e-5)


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
