"""The training loop on real data: carried state, clipping, loss going down."""

import numpy as np
import pytest
from elman.data.datasets import load_dataset
from elman.train.api import TrainConfig, train_run
from elman.train.loop import classification_windows, stream_windows

tf = pytest.importorskip("tensorflow")


def _text_trainer(units=12, clip=1.0, vocab=None):
    import keras
    from elman.train.loop import Trainer
    from elman.train.model import build_model

    keras.utils.set_random_seed(3)
    model = build_model(
        "language_model", units=units, input_dim=vocab, output_dim=vocab, embedding=6
    )
    return Trainer(model, "language_model", lr=1e-2, clip=clip)


def test_stream_windows_cut_parallel_streams_and_carry_in_order():
    ids = np.arange(101, dtype=np.int32)
    windows = list(stream_windows(ids, batch=4, bptt=7))
    inputs = np.concatenate([x for x, _ in windows], axis=1)
    targets = np.concatenate([y for _, y in windows], axis=1)
    np.testing.assert_array_equal(inputs, np.arange(100).reshape(4, 25))
    np.testing.assert_array_equal(targets, np.arange(1, 101).reshape(4, 25))
    assert [x.shape[1] for x, _ in windows] == [7, 7, 7, 4]


def test_classification_windows_put_the_remainder_first():
    x = np.zeros((2, 10, 3))
    assert [w.shape[1] for w in classification_windows(x, 4)] == [2, 4, 4]
    assert [w.shape[1] for w in classification_windows(x, None)] == [10]


def test_carried_windows_equal_one_unrolled_pass():
    data = load_dataset("text:fortunes", max_chars=2000)
    trainer = _text_trainer(vocab=data.vocab_size)
    ids = data.train_ids[: 2 * 30 + 1]
    x, y = ids[:-1].reshape(2, 30), ids[1:].reshape(2, 30)
    full, h_full = trainer.window_loss(x, y, trainer.zero_state(2))
    h = trainer.zero_state(2)
    losses = []
    for start in range(0, 30, 10):
        loss, h = trainer.window_loss(x[:, start : start + 10], y[:, start : start + 10], h)
        losses.append(float(loss))
    np.testing.assert_allclose(np.mean(losses), float(full), rtol=1e-5)
    np.testing.assert_allclose(h.numpy(), h_full.numpy(), atol=1e-6)
    # and the state really matters: restarting from zero gives a different loss
    restart, _ = trainer.window_loss(x[:, 10:20], y[:, 10:20], trainer.zero_state(2))
    assert abs(float(restart) - losses[1]) > 1e-4


def test_gradient_stops_at_window_boundaries():
    data = load_dataset("text:fortunes", max_chars=2000)
    trainer = _text_trainer(vocab=data.vocab_size)
    x = data.train_ids[:20].reshape(2, 10)
    y = data.train_ids[1:21].reshape(2, 10)
    _, _, h = trainer.train_step(x, y, trainer.zero_state(2))
    with tf.GradientTape() as tape:
        tape.watch(h)
        loss, _ = trainer.window_loss(x, y, h)
    assert tape.gradient(loss, h) is not None  # within a window gradients reach the state
    kernel = trainer.model.get_layer("rnn").trainable_variables[0]
    with tf.GradientTape() as tape:
        _, _, h2 = trainer.train_step(x, y, trainer.zero_state(2))
        out = tf.reduce_sum(h2)
    g = tape.gradient(out, kernel)
    assert g is None or not np.any(g.numpy())  # the carried state is stop_gradient


def test_recorded_norm_is_the_pre_clip_global_norm():
    data = load_dataset("text:fortunes", max_chars=2000)
    trainer = _text_trainer(vocab=data.vocab_size, clip=1e-6)
    x = data.train_ids[:40].reshape(4, 10)
    y = data.train_ids[1:41].reshape(4, 10)
    h0 = trainer.zero_state(4)
    variables = trainer.model.trainable_variables
    with tf.GradientTape() as tape:
        loss, _ = trainer.window_loss(x, y, h0)
    expected = float(tf.linalg.global_norm(tape.gradient(loss, variables)))
    before = [v.numpy().copy() for v in variables]
    _, norm, _ = trainer.train_step(x, y, h0)
    np.testing.assert_allclose(float(norm), expected, rtol=1e-5)
    assert expected > 1e-6
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, variables, strict=True))


TINY_TEXT = dict(units=16, embedding=8, batch=4, bptt=10, epochs=2, max_chars=3000)


@pytest.mark.parametrize("clip, fraction", [(1e-6, 1.0), (0.0, 0.0)])
def test_clip_threshold_fraction(tmp_path, clip, fraction):
    cfg = TrainConfig(**TINY_TEXT, clip=clip, baseline=False)
    report = train_run("text:fortunes", tmp_path / "run", cfg, progress=False)
    c = report["clipping"]
    assert c["threshold"] == clip
    assert c["updates"] == report["throughput"]["updates"] > 0
    assert c["fraction_clipped"] == fraction
    assert c["clipped_updates"] == round(fraction * c["updates"])
    assert c["grad_norm"]["min"] > 0
    per_update = np.array(c["grad_norm_per_update"])
    assert len(per_update) == c["updates"]
    assert c["clipped_updates"] == (int((per_update > clip).sum()) if clip else 0)


def test_text_loss_decreases(tmp_path):
    cfg = TrainConfig(units=32, embedding=8, batch=8, bptt=20, epochs=3, max_chars=20000)
    report = train_run("text:fortunes", tmp_path / "run", cfg, progress=False)
    losses = [e["val_loss"] for e in report["epochs"]]
    assert losses[-1] < losses[0] < np.log(len(load_dataset("text:fortunes", max_chars=100).vocab))
    assert report["metrics"]["val_perplexity"] == pytest.approx(np.exp(losses[-1]))
    assert report["metrics"]["val_bits_per_char"] == pytest.approx(losses[-1] / np.log(2))


def test_classification_loss_decreases_and_bptt_windows(tmp_path):
    cfg = TrainConfig(units=8, epochs=4, batch=8, bptt=30)
    report = train_run("sensor:basicmotions", tmp_path / "run", cfg, progress=False)
    losses = [e["train_loss"] for e in report["epochs"]]
    assert losses[-1] < losses[0]
    cm = np.array(report["metrics"]["confusion_matrix"])
    assert cm.shape == (4, 4) and cm.sum() == 40
    assert report["metrics"]["test_accuracy"] == pytest.approx(np.trace(cm) / 40)


def test_schedule_warmup_then_cosine():
    from elman.train.fit import Schedule

    s = Schedule(TrainConfig(lr=1e-2, warmup=0.1, minutes=0), total_updates=100)
    assert s.lr(5) == pytest.approx(5e-3)
    assert s.lr(10) == pytest.approx(1e-2)
    assert s.lr(55) == pytest.approx(5e-3)
    assert s.lr(100) == pytest.approx(0.0, abs=1e-12)
    constant = Schedule(TrainConfig(lr=1e-2, schedule="constant"), total_updates=100)
    assert constant.lr(0) == constant.lr(99) == 1e-2
