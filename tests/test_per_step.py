"""Per-step classification: the streaming data set, per-step npz labels, training, metrics."""

import numpy as np
import pytest
from elman.data.datasets import load_dataset, load_raw
from elman.data.streams import RECORDINGS_PER_STREAM, TEST_STREAMS, TRAIN_STREAMS
from elman.quantize import task_metrics

from elman.errors import DataError


def test_switch_delay_counts_steps_until_the_answer_follows():
    labels = np.array([[0, 0, 0, 1, 1, 1, 1, 2, 2, 2]])
    pred = np.array([[0, 0, 0, 0, 0, 1, 1, 1, 1, 1]])
    delays, missed = task_metrics.switch_delays(pred, labels)
    assert (delays, missed) == ([2], 1)  # 0 -> 1 after 2 steps; 1 -> 2 never followed
    summary = task_metrics.delay_summary(delays, missed)
    assert (summary["changes"], summary["followed"], summary["median_steps"]) == (2, 1, 2.0)
    # an immediate switch is 0; a stream without changes has none
    assert task_metrics.switch_delays(labels, labels) == ([0, 0], 0)
    assert task_metrics.switch_delays(np.zeros((1, 5)), np.zeros((1, 5))) == ([], 0)
    m = task_metrics.classification_metrics(np.eye(3)[pred], labels)
    assert m["per_step_accuracy"] == 0.5 and m["switch_delay"]["missed"] == 1


def test_the_stream_data_set_is_real_seeded_and_disjoint():
    base = load_raw("sensor", "basicmotions")
    a = load_raw("sensor", "basicmotions-stream")
    b = load_raw("sensor", "basicmotions-stream")
    np.testing.assert_array_equal(a.x_train, b.x_train)  # seeded: the same every time
    steps = base.x_train.shape[1]
    assert a.x_train.shape == (TRAIN_STREAMS, RECORDINGS_PER_STREAM * steps, 6)
    assert a.x_test.shape == (TEST_STREAMS, RECORDINGS_PER_STREAM * steps, 6)
    assert a.y_train.shape == a.x_train.shape[:2] and a.classes == base.classes
    for x, y, source, labels in ((a.x_train, a.y_train, base.x_train, base.y_train),
                                 (a.x_test, a.y_test, base.x_test, base.y_test)):
        segments = x.reshape(len(x), RECORDINGS_PER_STREAM, steps, 6)
        seg_labels = y.reshape(len(y), RECORDINGS_PER_STREAM, steps)
        assert (seg_labels == seg_labels[:, :, :1]).all()  # one label per recording
        assert (seg_labels[:, 1:, 0] != seg_labels[:, :-1, 0]).all()  # every boundary changes
        for seg, label in zip(segments.reshape(-1, steps, 6), seg_labels[:, :, 0].ravel(),
                              strict=True):
            match = np.flatnonzero((source == seg).all(axis=(1, 2)))
            assert len(match) >= 1 and labels[match[0]] == label  # a real recording
    train_rec = {r.tobytes() for r in base.x_train}
    assert not any(r.tobytes() in train_rec for r in base.x_test)  # the archive's split
    test_segments = a.x_test.reshape(-1, steps, 6)
    assert not any(s.tobytes() in train_rec for s in test_segments)


def _per_step_npz(tmp_path, y_shape=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 20, 3))
    y = (x[:, :, 0] > 0).astype(np.int64)  # the answer at every step is in that step
    if y_shape is not None:
        y = np.zeros(y_shape, np.int64)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    return f"npz:{tmp_path / 'd.npz'}"


def test_npz_with_per_step_labels_and_a_clear_error_for_a_wrong_shape(tmp_path):
    data = load_dataset(_per_step_npz(tmp_path))
    assert data.y_train.shape == data.x_train.shape[:2]
    assert data.spec()["per_step_labels"] is True
    with pytest.raises(DataError, match=r"or \(N, T\) = \(30, 20\) \(one label per step\), "
                                        r"got \(30, 7\)"):
        load_dataset(_per_step_npz(tmp_path, (30, 7)))


def test_training_a_per_step_classifier(tmp_path):
    from elman.quantize.keras_model import read_keras_file
    from elman.train.api import TrainConfig, train_run

    report = train_run(_per_step_npz(tmp_path), tmp_path / "run",
                       TrainConfig(units=6, epochs=3, bptt=7, lr=3e-2, seed=0), progress=False)
    m = report["metrics"]
    assert m["answers"] == "every step"
    assert m["test_per_step_accuracy"] > 0.7  # one input channel decides every step
    assert m["test_switch_delay"]["changes"] > 0
    assert report["config"]["bptt"] == 7
    assert np.array(m["confusion_matrix"]).sum() == 6 * 20  # every step of 6 test streams
    found = read_keras_file(tmp_path / "run" / "model.keras")
    assert found.model.head_steps == "every"
