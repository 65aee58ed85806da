"""Text training: a fixed amount of work, reproducible to the bit, recipes, dropout."""

import math

import numpy as np
import pytest
from elman.train.config import TEXT_RECIPES, TrainConfig

from elman.errors import ElmanError

tf = pytest.importorskip("tensorflow")

TINY = dict(units=16, embedding=8, batch=4, bptt=10, max_chars=3000, diagnostics=False,
            baseline=False)


def test_text_defaults_are_an_amount_of_work_not_a_clock():
    cfg = TrainConfig().resolved("language_model")
    assert cfg.minutes == 0 and cfg.epochs is None
    assert cfg.chars == TEXT_RECIPES["default"]["chars"]
    long = TrainConfig(budget="long").resolved("language_model")
    assert long.chars == TEXT_RECIPES["long"]["chars"] > cfg.chars
    for key, value in TEXT_RECIPES["long"].items():
        assert getattr(long, key) == value
    # an explicit option overrides the recipe; --epochs replaces --chars
    assert TrainConfig(budget="long", units=99).resolved("language_model").units == 99
    by_epochs = TrainConfig(epochs=3).resolved("language_model")
    assert by_epochs.epochs == 3 and by_epochs.chars is None


@pytest.mark.parametrize("options, message", [
    (dict(chars=10, epochs=2), "not both"),
    (dict(budget="huge"), "--budget must be one of default, long"),
    (dict(dropout_head=1.0), "--dropout-head must be in"),
    (dict(dropout_embedding=-0.1), "--dropout-embedding must be in"),
    (dict(chars=0), "--chars must be >= 1"),
])
def test_bad_text_options_are_one_clear_error(options, message):
    with pytest.raises(ElmanError, match=message):
        TrainConfig(**options).resolved("language_model")


def test_text_only_options_are_refused_for_classification():
    for options in (dict(budget="long"), dict(chars=1000), dict(dropout_embedding=0.1)):
        with pytest.raises(ElmanError):
            TrainConfig(**options).resolved("classification")


def test_chars_set_the_number_of_updates_across_epochs(tmp_path):
    from elman.train.api import train_run

    chars = 4 * 10 * 170  # 170 windows of 4 x 10: more than two epochs of 3,000 characters
    report = train_run("text:fortunes", tmp_path / "run", TrainConfig(**TINY, chars=chars),
                       progress=False)
    t = report["throughput"]
    assert t["updates"] == math.ceil(chars / 40) == len(report["clipping"]["grad_norm_per_update"])
    assert len(report["epochs"]) == 3  # two full epochs of ~74 windows, then a partial one
    assert report["epochs"][-1]["updates"] < report["epochs"][0]["updates"]
    assert report["epochs"][-1]["chars"] == t["steps"]
    assert report["stop_reason"] == "epochs"
    # the learning curve is scored with the one definition, on the whole validation stream
    assert report["metrics"]["val_predictions"] == 999
    assert report["metrics"]["val_perplexity"] == report["epochs"][-1]["val_perplexity"]


def test_a_long_run_scores_at_most_curve_points_epochs_and_always_the_last(tmp_path):
    import keras
    from elman.data.datasets import load_dataset
    from elman.train.api import train_run
    from elman.train.fit import CURVE_POINTS

    from elman.perplexity import score_logits, stream_pairs

    # ~2.6 x CURVE_POINTS passes: every 3rd epoch is scored, and the partial last one
    windows = 66  # per pass of the training part of 3,000 characters, in 4 x 10 windows
    chars = 4 * 10 * int(windows * CURVE_POINTS * 2.6)
    report = train_run("text:fortunes", tmp_path / "run", TrainConfig(**TINY, chars=chars),
                       progress=False)
    epochs = report["epochs"]
    scored = [e["epoch"] for e in epochs if "val_perplexity" in e]
    n = len(epochs)
    assert n > 2 * CURVE_POINTS and scored == [*range(3, n, 3), n]
    assert len(scored) <= CURVE_POINTS + 1
    assert all("val_loss" not in e for e in epochs if e["epoch"] not in scored)
    assert report["metrics"]["val_perplexity"] == epochs[-1]["val_perplexity"]
    # the last score is the saved model's, on the whole validation stream
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    data = load_dataset("text:fortunes", max_chars=3000)
    inputs, targets = stream_pairs(data.val_ids)
    logits = model(inputs[None].astype(np.int32)).numpy()[0]
    assert score_logits(logits, targets)["perplexity"] == pytest.approx(
        report["metrics"]["val_perplexity"], rel=1e-4)
    assert (tmp_path / "run" / "train_curves.png").exists()


def _weights(run):
    import keras

    model = keras.saving.load_model(run / "model.keras")
    return [w.numpy() for w in model.weights]


def test_same_seed_and_work_give_the_same_weights_and_perplexity(tmp_path):
    from elman.train.api import train_run

    cfg = TrainConfig(**TINY, chars=4000, dropout_embedding=0.1, dropout_head=0.2,
                      weight_decay=1e-3, seed=3)
    a = train_run("text:fortunes", tmp_path / "a", cfg, progress=False)
    b = train_run("text:fortunes", tmp_path / "b", cfg, progress=False)
    for wa, wb in zip(_weights(tmp_path / "a"), _weights(tmp_path / "b"), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert a["metrics"]["val_perplexity"] == b["metrics"]["val_perplexity"]
    assert [e["train_loss"] for e in a["epochs"]] == [e["train_loss"] for e in b["epochs"]]
    other = train_run("text:fortunes", tmp_path / "c",
                      TrainConfig(**{**cfg.as_dict(), "seed": 4}), progress=False)
    assert other["metrics"]["val_perplexity"] != a["metrics"]["val_perplexity"]


def _trainer(**kwargs):
    import keras
    from elman.train.loop import Trainer
    from elman.train.model import build_model

    keras.utils.set_random_seed(0)
    model = build_model("language_model", units=12, input_dim=30, output_dim=30, embedding=6)
    return Trainer(model, "language_model", lr=1e-2, clip=0.0, **kwargs)


def test_dropout_acts_in_training_only_with_masks_fixed_by_seed_and_update():
    x = np.random.default_rng(0).integers(0, 30, (4, 9)).astype(np.int32)
    plain, drop = _trainer(), _trainer(dropout_embedding=0.5, dropout_head=0.5, seed=7)
    h0 = plain.zero_state(4)
    # inference ignores dropout: same weights, same logits
    np.testing.assert_array_equal(plain.forward(x, h0)[0].numpy(), drop.forward(x, h0)[0].numpy())
    # training: dropout changes the loss; the same (seed, update) gives the same mask
    loss_plain = float(plain.window_loss(x, x, h0)[0])
    loss_a = float(drop.window_loss(x, x, h0)[0])
    assert loss_a != loss_plain
    assert float(_trainer(dropout_embedding=0.5, dropout_head=0.5, seed=7)
                 .window_loss(x, x, h0)[0]) == loss_a
    assert float(_trainer(dropout_embedding=0.5, dropout_head=0.5, seed=8)
                 .window_loss(x, x, h0)[0]) != loss_a
    drop.train_step(x, x, h0)  # each update draws new masks
    assert drop.dropout_seed.numpy().tolist() == [7, 1]


def test_weight_decay_shrinks_every_weight_by_rate_times_decay_beside_the_adam_step():
    # the long recipe's regularizer (decoupled, AdamW): after one update from the same
    # weights on the same window, w(decay) = w(no decay) - lr * decay * w(before)
    x = np.random.default_rng(1).integers(0, 30, (4, 9)).astype(np.int32)
    plain, decayed = _trainer(), _trainer(weight_decay=0.5)
    before = [v.numpy() for v in plain.model.trainable_variables]
    h0 = plain.zero_state(4)
    plain.train_step(x, x, h0)
    decayed.train_step(x, x, h0)
    for w0, a, b in zip(before, plain.model.trainable_variables,
                        decayed.model.trainable_variables, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy() - 1e-2 * 0.5 * w0, atol=1e-6)
        assert np.abs(w0).max() == 0 or not np.allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_minutes_stay_an_option_and_stop_the_clock(tmp_path):
    from elman.train.api import train_run

    cfg = TrainConfig(**TINY, chars=10**9, minutes=0.05)
    report = train_run("text:fortunes", tmp_path / "run", cfg, progress=False)
    assert report["stop_reason"] == "time budget of 0.05 minutes"
    assert 0 < report["throughput"]["updates"] < 10**9 // 40
    assert report["metrics"]["val_perplexity"] == report["epochs"][-1]["val_perplexity"]
