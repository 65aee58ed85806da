"""The one validation perplexity: its arithmetic, the training evaluator, and that every
stage's number is the same number."""

import math

import numpy as np
import pytest

from elman import perplexity


def test_score_is_exp_of_the_mean_nll_and_bits_are_log2():
    s = perplexity.score_nll(np.array([1.0, 2.0, 3.0]))
    assert s == {"nll": 2.0, "perplexity": math.exp(2.0), "bits_per_char": 2.0 / math.log(2),
                 "predictions": 3}
    with pytest.raises(ValueError, match="no predictions"):
        perplexity.score(0.0, 0)


def test_next_token_nll_matches_a_direct_softmax():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 30, (50, 7)).astype(np.float32)  # large: the max-shift matters
    targets = rng.integers(0, 7, 50)
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(perplexity.next_token_nll(logits, targets),
                               -np.log(p[np.arange(50), targets]), rtol=1e-9, atol=1e-12)
    # uniform logits: perplexity is the vocabulary size
    assert perplexity.score_logits(np.zeros((9, 7)), targets[:9])["perplexity"] == \
        pytest.approx(7.0)


def test_stream_pairs_predict_every_next_character():
    inputs, targets = perplexity.stream_pairs(np.array([4, 1, 3, 3]))
    np.testing.assert_array_equal(inputs, [4, 1, 3])
    np.testing.assert_array_equal(targets, [1, 3, 3])
    with pytest.raises(ValueError, match="at least 2"):
        perplexity.stream_pairs(np.array([4]))


@pytest.mark.parametrize("layers", [1, 2])
def test_training_score_is_the_keras_model_run_as_one_stream(layers, monkeypatch):
    """stream_score (numpy, in chunks) == the Keras model called once on the whole stream."""
    pytest.importorskip("tensorflow")
    import keras
    from elman.data.datasets import load_dataset
    from elman.train import stream_eval
    from elman.train.model import build_model

    data = load_dataset("text:fortunes", max_chars=20_000)
    monkeypatch.setattr(stream_eval, "CHUNK", 500)
    keras.utils.set_random_seed(1)
    model = build_model("language_model", units=20, input_dim=data.vocab_size,
                        output_dim=data.vocab_size, embedding=6, layers=layers)
    for layer in model.layers:  # a model whose state matters: larger input weights
        if isinstance(layer, keras.layers.SimpleRNN):
            k, r, b = layer.get_weights()
            layer.set_weights([k * 3, r * 0.9, b])
    ids = data.val_ids
    assert len(ids) > stream_eval.CHUNK  # several chunks, state carried across them
    logits = model(ids[None, :-1]).numpy()[0]
    expected = perplexity.score_logits(logits, ids[1:])
    got = stream_eval.stream_score(model, ids)
    assert got["predictions"] == len(ids) - 1
    assert got["perplexity"] == pytest.approx(expected["perplexity"], rel=1e-5)
    # restarting the state at a chunk boundary would give another number
    cut = stream_eval.CHUNK
    restarted = (stream_eval.stream_score(model, ids[: cut + 1])["nll"] * cut
                 + stream_eval.stream_score(model, ids[cut:])["nll"] * (len(ids) - 1 - cut))
    assert abs(restarted / (len(ids) - 1) - got["nll"]) > 1e-6
