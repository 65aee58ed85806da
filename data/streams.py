"""``sensor:basicmotions-stream``: long streams of real activity recordings, labelled per step.

A streaming detector answers at every sample and must notice when the activity
changes. This data set is made from the real BasicMotions recordings
(smartwatch accelerometer and gyroscope, 6 channels, 100 steps = 10 s at 10 Hz;
standing, walking, running, badminton): each stream is
:data:`RECORDINGS_PER_STREAM` recordings concatenated end to end, every step
labelled with its recording's activity, and two consecutive recordings always
show different activities, so every boundary inside a stream is an activity
change. Train streams are made only of the archive's TRAIN recordings, test
streams only of its TEST recordings (disjoint), in an order drawn once from
``numpy.random.default_rng(SEED)``: the same streams every time. Recordings are
used evenly (each train recording appears ``TRAIN_STREAMS *
RECORDINGS_PER_STREAM / 40`` times, each test recording twice).
"""

from __future__ import annotations

import numpy as np
from elman.data.datasets import RawClassification, load_raw

STREAM_DATASETS = {"basicmotions-stream": "basicmotions"}
RECORDINGS_PER_STREAM = 10
TRAIN_STREAMS = 40
TEST_STREAMS = 8
SEED = 0


def recording_order(labels: np.ndarray, count: int, rng: np.random.Generator,
                    pool: list[int], previous: int | None = None) -> list[int]:
    """``count`` recording indices, no two neighbours of the same label, drawn from
    ``pool`` (refilled with a fresh permutation when it runs dry) so that every
    recording is used about equally often."""
    order: list[int] = []
    while len(order) < count:
        choices = [i for i, j in enumerate(pool) if labels[j] != previous]
        if not choices:
            pool.extend(int(j) for j in rng.permutation(len(labels)))
            continue
        j = pool.pop(choices[0])
        order.append(j)
        previous = int(labels[j])
    return order


def concatenate_streams(x: np.ndarray, y: np.ndarray, lengths: np.ndarray, streams: int,
                        per_stream: int, rng: np.random.Generator
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``streams`` streams of ``per_stream`` recordings (their real samples, end to end):
    inputs (S, T_max, C), per-step labels (S, T_max) and stream lengths (S,); a shorter
    stream is padded with zeros (and its last label) after its end."""
    pool: list[int] = []
    xs, ys = [], []
    for _ in range(streams):
        order = recording_order(y, per_stream, rng, pool)
        xs.append(np.concatenate([x[j, :lengths[j]] for j in order]))
        ys.append(np.concatenate([np.full(lengths[j], y[j]) for j in order]))
    n = np.array([len(s) for s in xs], np.int64)
    out_x = np.zeros((streams, int(n.max()), x.shape[2]), x.dtype)
    out_y = np.zeros((streams, int(n.max())), np.int64)
    for i, (sx, sy) in enumerate(zip(xs, ys, strict=True)):
        out_x[i, :len(sx)] = sx
        out_y[i, :len(sy)] = sy
        out_y[i, len(sy):] = sy[-1]
    return out_x, out_y, n


def load_stream(key: str) -> RawClassification:
    """The streams of ``sensor:<key>`` (a key of :data:`STREAM_DATASETS`), raw units."""
    base = load_raw("sensor", STREAM_DATASETS[key])
    rng = np.random.default_rng(SEED)
    x_train, y_train, n_train = concatenate_streams(
        base.x_train, base.y_train, base.lengths_train, TRAIN_STREAMS, RECORDINGS_PER_STREAM,
        rng)
    x_test, y_test, n_test = concatenate_streams(
        base.x_test, base.y_test, base.lengths_test, TEST_STREAMS, RECORDINGS_PER_STREAM, rng)
    info = {
        **base.info,
        "split": f"streams of {RECORDINGS_PER_STREAM} recordings end to end, neighbours of "
                 f"different activities; {TRAIN_STREAMS} train streams from the archive's "
                 f"TRAIN recordings, {TEST_STREAMS} test streams from its TEST recordings; "
                 f"numpy default_rng({SEED})",
        "stream_labels": "per step: the activity of the recording the step belongs to",
    }
    return RawClassification(f"sensor:{key}", x_train, y_train, x_test, y_test,
                             list(base.classes), info, n_train, n_test)
