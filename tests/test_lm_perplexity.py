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


def test_training_quantize_and_verify_report_the_same_validation_perplexity(text_run):
    """One number: train_report's, quant_report's float (whole stream) and verify's float
    metric (float64 recurrence) agree; the int8 side of quantize is labelled the same way."""
    import json
    from types import SimpleNamespace

    from elman.data.spec import load_run_data
    from elman.quantize.keras_model import read_keras_file
    from elman.quantize.reader import read_ir
    from elman.runtime.float_reference import float_metrics
    from elman.runtime.simulator import Simulator, embed_tokens

    train = json.loads((text_run / "train_report.json").read_text())
    quant = json.loads((text_run / "quant_report.json").read_text())["evaluation"]
    ids = load_run_data(text_run).val_ids
    assert train["metrics"]["val_predictions"] == quant["stream_steps"] == len(ids) - 1
    assert quant["whole_stream"] and quant["perplexity"] == perplexity.DEFINITION
    expected = train["metrics"]["val_perplexity"]
    assert quant["metrics"]["float"]["perplexity"] == pytest.approx(expected, rel=1e-6)

    ir = read_ir(text_run / "model_int8.tflite")
    stream = np.asarray(ids, np.int64)[None]
    simulated = Simulator(ir, "tflm").run(embed_tokens(ir, stream))
    model = read_keras_file(text_run / "model.keras", "language_model").model
    verify = float_metrics(model, ir, SimpleNamespace(ids=stream, labels=None, x_float=None,
                                                           lengths=None),
                           simulated, "tflm")["metrics"]
    assert verify["float_perplexity"] == pytest.approx(expected, rel=1e-5)
    # the simulator's int8 perplexity is a perplexity of the same stream
    assert verify["int8_perplexity"] == pytest.approx(
        perplexity.score_logits(ir.output_quant.dequantize(simulated.y[0, :-1]),
                                stream[0, 1:])["perplexity"], rel=1e-5)


def test_quantize_labels_a_prefix_evaluation(text_run, tmp_path):
    import shutil

    from elman.quantize.api import quantize_run

    run = tmp_path / "run"
    shutil.copytree(text_run, run)
    ev = quantize_run(run, progress=False, eval_chars=500)["evaluation"]
    assert ev["stream_steps"] == 500 and not ev["whole_stream"]
    assert ev["perplexity"].startswith("on the first 500 characters")


def test_learning_curve_scored_beside_training_equals_scoring_in_line():
    """fit_text scores each epoch in a thread while the next trains (no on_epoch) or in line
    (on_epoch given): the same weights, the same numbers, and each row is the epoch's own
    model (the last row equals a fresh score of the trained model)."""
    pytest.importorskip("tensorflow")
    import keras
    from elman.data.datasets import load_dataset
    from elman.train import fit, stream_eval
    from elman.train.config import TrainConfig
    from elman.train.loop import Trainer
    from elman.train.model import build_model

    data = load_dataset("text:fortunes", max_chars=30_000)
    cfg = TrainConfig(units=24, embedding=8, batch=8, bptt=20, chars=90_000,
                      baseline=False).resolved("language_model")

    def curve(on_epoch):
        keras.utils.set_random_seed(3)
        model = build_model("language_model", units=24, input_dim=data.vocab_size,
                            output_dim=data.vocab_size, embedding=8)
        trainer = Trainer(model, "language_model", lr=5e-3, clip=1.0, seed=3)
        result = fit.fit_text(trainer, data, cfg, progress=False, on_epoch=on_epoch)
        return result, model

    seen = []
    threaded, model = curve(None)
    in_line, _ = curve(lambda row, trainer: seen.append(row["val_perplexity"]))
    assert len(threaded.epochs) >= 3
    keys = ("epoch", "chars", "val_loss", "val_perplexity", "val_bits_per_char", "train_loss")
    assert [[r[k] for k in keys] for r in threaded.epochs] == \
        [[r[k] for k in keys] for r in in_line.epochs]
    assert seen == [r["val_perplexity"] for r in in_line.epochs]
    assert len({r["val_perplexity"] for r in threaded.epochs}) == len(threaded.epochs)
    assert threaded.epochs[-1]["val_perplexity"] == \
        stream_eval.stream_score(model, data.val_ids)["perplexity"]
