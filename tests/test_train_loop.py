"""The training loop on real data: carried state, clipping, loss going down."""

import numpy as np
import pytest
from elman.data.datasets import load_dataset
from elman.train.api import TrainConfig, train_run
from elman.train.loop import classification_windows, stream_windows

tf = pytest.importorskip("tensorflow")


def _text_trainer(units=12, clip=1.0, vocab=None, layers=1):
    import keras
    from elman.train.loop import Trainer
    from elman.train.model import build_model

    keras.utils.set_random_seed(3)
    model = build_model(
        "language_model", units=units, input_dim=vocab, output_dim=vocab, embedding=6,
        layers=layers,
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


@pytest.mark.parametrize("layers", [1, 2])
def test_carried_windows_equal_one_unrolled_pass(layers):
    data = load_dataset("text:fortunes", max_chars=2000)
    trainer = _text_trainer(vocab=data.vocab_size, layers=layers)
    ids = data.train_ids[: 2 * 30 + 1]
    x, y = ids[:-1].reshape(2, 30), ids[1:].reshape(2, 30)
    full, h_full = trainer.window_loss(x, y, trainer.zero_state(2))
    h = trainer.zero_state(2)
    losses = []
    for start in range(0, 30, 10):
        loss, h = trainer.window_loss(x[:, start : start + 10], y[:, start : start + 10], h)
        losses.append(float(loss))
    np.testing.assert_allclose(np.mean(losses), float(full), rtol=1e-5)
    assert len(h) == len(h_full) == layers
    for got, want in zip(h, h_full, strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)
    # and the state really matters: restarting from zero gives a different loss
    restart, _ = trainer.window_loss(x[:, 10:20], y[:, 10:20], trainer.zero_state(2))
    assert abs(float(restart) - losses[1]) > 1e-4


@pytest.mark.parametrize("layers, dropout_embedding", [(1, 0.0), (2, 0.0), (1, 0.3)])
def test_unrolled_recurrence_is_the_layer_loop_with_the_same_gradients(layers, dropout_embedding):
    """The text windows' fast path (embedding folded into the input kernel, the
    recurrence unrolled with a hand-written backward pass) computes the SimpleRNN
    layers' function and the gradients automatic differentiation gives them."""
    import keras
    from elman.train.loop import Trainer
    from elman.train.model import build_model

    keras.utils.set_random_seed(5)
    model = build_model("language_model", units=24, input_dim=30, output_dim=30, embedding=6,
                        layers=layers)
    trainer = Trainer(model, "language_model", lr=1e-2, clip=0.0, window=9,
                      dropout_embedding=dropout_embedding, dropout_head=0.2)
    rng = np.random.default_rng(0)
    x = rng.integers(30, size=(5, 9)).astype(np.int32)
    y = rng.integers(30, size=(5, 9)).astype(np.int32)
    h0 = [tf.constant(rng.normal(size=(5, 24)) * 0.5, tf.float32) for _ in range(layers)]
    results = []
    for unrolled in (False, True):
        with tf.GradientTape() as tape:
            loss, h_last = trainer.window_loss(x, y, h0, None, unrolled)
        grads = tape.gradient(loss, model.trainable_variables)
        results.append((float(loss), [tf.convert_to_tensor(g).numpy() for g in grads],
                        [h.numpy() for h in h_last]))
    (loss_a, grads_a, h_a), (loss_b, grads_b, h_b) = results
    np.testing.assert_allclose(loss_b, loss_a, rtol=1e-6)
    assert len(grads_a) == len(grads_b) == 3 * layers + 3
    for want, got in zip(grads_a, grads_b, strict=True):
        assert np.abs(want).max() > 0
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())
    for want, got in zip(h_a, h_b, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_text_windows_of_the_window_length_take_the_unrolled_step_others_the_layer_loop():
    data = load_dataset("text:fortunes", max_chars=2000)
    import keras
    from elman.train.loop import Trainer
    from elman.train.model import build_model

    keras.utils.set_random_seed(3)
    model = build_model("language_model", units=12, input_dim=data.vocab_size,
                        output_dim=data.vocab_size, embedding=6)
    trainer = Trainer(model, "language_model", lr=1e-2, clip=1.0, window=10)
    ids = data.train_ids
    trainer.train_step(ids[:20].reshape(2, 10), ids[1:21].reshape(2, 10), trainer.zero_state(2))
    assert trainer._window_step.experimental_get_tracing_count() == 1
    assert trainer._layer_step.experimental_get_tracing_count() == 0
    trainer.train_step(ids[:8].reshape(2, 4), ids[1:9].reshape(2, 4), trainer.zero_state(2))
    assert trainer._layer_step.experimental_get_tracing_count() == 1
    assert trainer._window_step.experimental_get_tracing_count() == 1


def test_gradient_stops_at_window_boundaries():
    data = load_dataset("text:fortunes", max_chars=2000)
    trainer = _text_trainer(vocab=data.vocab_size)
    x = data.train_ids[:20].reshape(2, 10)
    y = data.train_ids[1:21].reshape(2, 10)
    _, _, h = trainer.train_step(x, y, trainer.zero_state(2))
    with tf.GradientTape() as tape:
        tape.watch(h)
        loss, _ = trainer.window_loss(x, y, h)
    assert tape.gradient(loss, h)[0] is not None  # within a window gradients reach the state
    kernel = trainer.model.get_layer("rnn").trainable_variables[0]
    with tf.GradientTape() as tape:
        _, _, h2 = trainer.train_step(x, y, trainer.zero_state(2))
        out = tf.reduce_sum(h2[0])
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


def test_two_layer_classifier_trains_and_saves_both_layers(tmp_path):
    from elman.quantize.keras_model import read_keras_file

    cfg = TrainConfig(units=8, layers=2, epochs=3, batch=8, diagnostics=True)
    report = train_run("sensor:basicmotions", tmp_path / "run", cfg, progress=False)
    assert report["model"]["layers"] == 2 and report["config"]["layers"] == 2
    losses = [e["train_loss"] for e in report["epochs"]]
    assert losses[-1] < losses[0]
    found = read_keras_file(tmp_path / "run" / "model.keras")
    assert (found.model.depth, found.model.units, found.model.head_steps) == (2, (8, 8), "last")
    assert len(report["grad_norm_vs_distance"]["mean_norm"]) == 100


def test_layers_out_of_range_are_refused(tmp_path):
    from elman.errors import ElmanError

    with pytest.raises(ElmanError, match="--layers must be 1 to 3, got 4"):
        train_run("sensor:basicmotions", tmp_path / "run", TrainConfig(layers=4), progress=False)
    assert not (tmp_path / "run").exists()
    from typer.testing import CliRunner

    from elman.cli import app

    for command in ("train", "run"):
        result = CliRunner().invoke(app, [command, "--layers", "0", str(tmp_path / command)])
        assert result.exit_code == 1 and "--layers must be 1 to 3, got 0" in result.output
        assert not (tmp_path / command).exists()


def test_schedule_warmup_then_cosine():
    from elman.train.fit import Schedule

    s = Schedule(TrainConfig(lr=1e-2, warmup=0.1, minutes=0), total_updates=100)
    assert s.lr(5) == pytest.approx(5e-3)
    assert s.lr(10) == pytest.approx(1e-2)
    assert s.lr(55) == pytest.approx(5e-3)
    assert s.lr(100) == pytest.approx(0.0, abs=1e-12)
    constant = Schedule(TrainConfig(lr=1e-2, schedule="constant"), total_updates=100)
    assert constant.lr(0) == constant.lr(99) == 1e-2


def test_unequal_lengths_loss_and_answer_use_real_steps_only():
    """A batch padded at the end (with anything) trains and answers exactly as each
    sequence does on its own: the loss weights cover its own last steps, and its
    answer is the output at its last real step."""
    import keras
    from elman.train.loop import Trainer, loss_weights, predict_classes
    from elman.train.model import build_model

    data = load_dataset("sensor:pickupgesturewiimotez")
    keras.utils.set_random_seed(0)
    model = build_model("classification", units=8, input_dim=1, output_dim=10,
                        sequence_outputs=True)
    trainer = Trainer(model, "classification", lr=1e-3, clip=0.0)
    lengths = data.lengths_train[:4]
    x = data.x_train[:4, : lengths.max()].copy()
    for n, length in enumerate(lengths):
        x[n, length:] = 1e3  # garbage after each end must not matter
    y = data.y_train[:4]
    w = loss_weights(lengths, x.shape[1], None)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)
    assert (w[np.arange(x.shape[1])[None, :] >= lengths[:, None]] == 0).all()
    batch_loss, _ = trainer.window_loss(x, y, trainer.zero_state(4), w)
    alone = []
    for n, length in enumerate(lengths):
        xn = x[n : n + 1, :length]
        loss, _ = trainer.window_loss(xn, y[n : n + 1], trainer.zero_state(1),
                                      loss_weights(lengths[n : n + 1], length, None))
        alone.append(float(loss))
    np.testing.assert_allclose(float(batch_loss), np.mean(alone), rtol=1e-5)
    logits = predict_classes(trainer, x, lengths)
    for n, length in enumerate(lengths):
        single, _ = trainer.forward(x[n : n + 1, :length], trainer.zero_state(1))
        np.testing.assert_allclose(logits[n], single.numpy()[0, -1], rtol=1e-5, atol=1e-6)


def test_bptt_with_unequal_lengths_is_refused(tmp_path):
    from elman.errors import DataError

    cfg = TrainConfig(units=4, epochs=1, bptt=20, diagnostics=False, stride=1)
    with pytest.raises(DataError, match=r"--bptt windows need sequences of equal length "
                                        r"\(these have 29 to 361 steps\)"):
        train_run("sensor:pickupgesturewiimotez", tmp_path / "run", cfg, progress=False)
    assert not (tmp_path / "run").exists()
