"""A run's held-out data, as every stage after training sees it: one loader for all.

``quantize`` evaluates on it, ``verify`` compares implementations on it, ``mcu``
runs it on emulated cores, the firmware example embeds it and the report plots
it. All of them call :func:`load_held_out`, which reads ``data_spec.json`` (so
the normalization and vocabulary are the stored ones) and returns plain arrays;
each stage then quantizes them with its own model's input parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from elman.data.datasets import TextData
from elman.data.spec import load_run_data

from elman.errors import ElmanError


@dataclass(frozen=True)
class HeldOut:
    """Held-out sequences of one run.

    ``inputs``: classification, float32 (N, T, C) normalized test sequences; text,
    int64 (N, T) token ids. ``targets``: the class of each test sequence, the token
    that follows each text window, or ``None`` for the text stream. ``lengths``: the
    true length of each sequence (N,); its steps after that are padding, and its
    answer is the output at step ``lengths[n] - 1``. An implementation that runs a
    padded sequence from the reset state computes on its real steps exactly what
    streaming only those samples computes (a step depends on earlier steps only).
    """

    task: str  # "classification" or "language_model"
    source: str  # the data spec, e.g. "sensor:basicmotions"
    inputs: np.ndarray
    targets: np.ndarray | None
    names: list[str]  # class names (classification) or the vocabulary (text)
    description: str  # e.g. "test split, 40 sequences x 100 steps"
    lengths: np.ndarray  # int64 (N,)

    @property
    def tokens(self) -> bool:
        return self.task == "language_model"

    def same_length(self, count: int) -> HeldOut:
        """At most ``count`` sequences that share one length, cut to it (no padding): for a
        consumer that runs every sample for the same number of steps. The length is the
        most common one (the longest of those on a tie); its first sequences, in order."""
        values, counts = np.unique(self.lengths, return_counts=True)
        length = int(values[counts == counts.max()].max())
        pick = np.flatnonzero(self.lengths == length)[:count]
        return HeldOut(self.task, self.source, self.inputs[pick, :length],
                       None if self.targets is None else self.targets[pick], self.names,
                       f"{len(pick)} sequences of {length} steps of the {self.description}",
                       self.lengths[pick])


def load_held_out(run_dir: Path | str, *, limit: int | None = None,
                  window: int | None = None) -> HeldOut:
    """The held-out data of the run in ``run_dir``.

    Classification: the test split (its first ``limit`` sequences). Text: the
    validation stream as one sequence (its first ``limit`` steps), or, with
    ``window``, consecutive windows of ``window`` tokens (at most ``limit`` of
    them), each with the token that follows it as its target.
    """
    if limit is not None and limit < 1:
        raise ElmanError(f"--limit must be at least 1, got {limit}")
    data = load_run_data(run_dir)
    if isinstance(data, TextData):
        return _text(data, limit, window)
    x = np.asarray(data.x_test[:limit], np.float32)
    y = np.asarray(data.y_test[:limit], np.int64)
    lengths = np.asarray(data.lengths_test[:limit], np.int64)
    if len(lengths) and lengths.max() < x.shape[1]:
        x = x[:, : lengths.max()]
    steps = (f"{x.shape[1]} steps" if (lengths == x.shape[1]).all()
             else f"{lengths.min()} to {lengths.max()} steps")
    return HeldOut(data.task, data.source, x, y, list(data.classes),
                   f"test split, {x.shape[0]} sequences x {steps}", lengths)


def _text(data: TextData, limit: int | None, window: int | None) -> HeldOut:
    ids = np.asarray(data.val_ids, np.int64)
    if window is None:
        stream = ids[:limit][None, :]
        return HeldOut(data.task, data.source, stream, None, list(data.vocab),
                       f"validation stream, 1 sequence x {stream.shape[1]} steps",
                       np.array([stream.shape[1]], np.int64))
    if window < 1:
        raise ElmanError(f"text window must be at least 1 token, got {window}")
    window = min(window, max(1, len(ids) - 1))
    n = max(1, (len(ids) - 1) // window)
    n = n if limit is None else min(n, limit)
    windows = ids[: n * window].reshape(n, window)
    nexts = ids[np.minimum(np.arange(1, n + 1) * window, len(ids) - 1)]
    return HeldOut(data.task, data.source, windows, nexts, list(data.vocab),
                   f"{n} validation windows of {window} tokens", np.full(n, window, np.int64))
