"""Datasets: what ``--data`` names, loaded and normalized as the model sees it.

Specs accepted by :func:`load_dataset` (the README's Data section):

- ``sensor:basicmotions``, ``sensor:gunpoint``, ``sensor:pickupgesturewiimotez``:
  UEA/UCR archive ``.ts`` files shipped inside the ``aeon`` wheel; ``ts:PATH``: a
  user's ``.ts`` file (see :mod:`elman.data.ts_datasets`);
- ``sensor:basicmotions-stream``: long streams of real BasicMotions recordings,
  labelled per step (see :mod:`elman.data.streams`);
- ``npz:PATH``: arrays ``x`` and ``y`` (see :mod:`elman.data.npz_format`);
- ``csv:PATH``: one row per sample (see :mod:`elman.data.csv_format`);
- ``text:fortunes`` and ``text:PATH``: see :mod:`elman.data.text_corpus`.

Classification inputs are normalized per channel with the training split's mean
and standard deviation over real steps (a channel with zero spread gets std 1;
a statistic that is not finite is refused, naming the channel); the statistics
are stored in ``data_spec.json`` so that every later stage sees exactly the
numbers the model saw (:func:`elman.data.spec.load_run_data`). Sequences keep
their true lengths (:mod:`elman.data.sequences`). Text is mapped to integer ids
with a vocabulary of every character of the corpus (both splits), sorted by
code point, stored in ``data_spec.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from elman.data import text_corpus
from elman.data.sequences import (
    DEFAULT_DELTAS,
    DEFAULT_STRIDE_MODE,
    STRIDE_MODE_CHOICES,
    STRIDE_TARGET,
    auto_deltas,
    auto_stride,
    auto_stride_mode,
    check_deltas,
    check_stride,
    check_stride_mode,
    describe,
    mask,
    median_rule,
    strided,
    with_deltas,
)

from elman.errors import DataError

SPEC_FORMAT = "elman-data-spec/1"
KINDS = ("sensor", "ts", "npz", "csv", "text")
TEXT_DATASETS = ("fortunes",)


@dataclass(frozen=True)
class ClassificationData:
    """Sequence classification data, normalized exactly as the model sees it.

    Sequence ``n`` is ``x[n, :lengths[n]]``; the steps after it are zeros (padding).
    """

    source: str
    x_train: np.ndarray  # float32 (N, T, C)
    y_train: np.ndarray  # int64 (N,), or (N, T): one label per step
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    mean: np.ndarray  # float64 (C,), raw units
    std: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)  # split, padding, file hashes
    lengths_train: np.ndarray | None = None  # int64 (N,); None: every sequence is T long
    lengths_test: np.ndarray | None = None
    task: str = "classification"

    def __post_init__(self):
        for name, x in (("lengths_train", self.x_train), ("lengths_test", self.x_test)):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(len(x), x.shape[1], np.int64))

    @property
    def channels(self) -> int:
        return self.x_train.shape[2]

    @property
    def timesteps(self) -> int:
        return self.x_train.shape[1]

    @property
    def equal_length(self) -> bool:
        lengths = np.concatenate([self.lengths_train, self.lengths_test])
        return bool((lengths == self.timesteps).all())

    def spec(self) -> dict[str, Any]:
        return {
            "format": SPEC_FORMAT,
            "task": self.task,
            "source": self.source,
            "classes": list(self.classes),
            "input": {
                "channels": self.channels,
                "timesteps": self.timesteps,
                "normalization": {
                    "formula": "(x - mean) / std, per channel, float64 then float32",
                    "mean": [float(v) for v in self.mean],
                    "std": [float(v) for v in self.std],
                },
            },
            "sizes": {"train": len(self.y_train), "test": len(self.y_test)},
            "per_step_labels": bool(self.y_train.ndim == 2),
            **self.info,
        }


@dataclass(frozen=True)
class TextData:
    """Character streams for language modelling."""

    source: str
    train_ids: np.ndarray  # int32 (L_train,)
    val_ids: np.ndarray  # int32 (L_val,)
    vocab: list[str]  # id -> character
    info: dict[str, Any] = field(default_factory=dict)
    task: str = "language_model"

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def spec(self) -> dict[str, Any]:
        return {
            "format": SPEC_FORMAT,
            "task": self.task,
            "source": self.source,
            "vocab": list(self.vocab),
            "sizes": {"train_chars": len(self.train_ids), "val_chars": len(self.val_ids)},
            **self.info,
        }

    def decode(self, ids: np.ndarray) -> str:
        return "".join(self.vocab[int(i)] for i in ids)


RunData = ClassificationData | TextData


@dataclass(frozen=True)
class RawClassification:
    """Classification data in raw units, before normalization (padding: zeros)."""

    source: str
    x_train: np.ndarray  # float64 (N, T, C), raw units
    y_train: np.ndarray  # int64 (N,) class indices
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    info: dict[str, Any]
    lengths_train: np.ndarray  # int64 (N,)
    lengths_test: np.ndarray
    task: str = "classification"

    @property
    def smallest_class(self) -> int:
        """Training sequences of the rarest class (one label per sequence)."""
        return int(np.bincount(self.y_train, minlength=len(self.classes)).min())

    def with_deltas(self, rule: str | None = None) -> RawClassification:
        """Each sample followed by its first difference, per channel (2C channels; see
        :func:`elman.data.sequences.with_deltas`); the data spec records ``deltas``."""
        info = {**self.info, "deltas": True}
        if rule is not None:
            info["deltas_rule"] = rule
        return dataclasses.replace(
            self, x_train=with_deltas(self.x_train, self.lengths_train),
            x_test=with_deltas(self.x_test, self.lengths_test), info=info)

    def strided(self, stride: int, mode: str, rule: str | None = None) -> RawClassification:
        """Each sequence read at ``stride`` in ``mode`` (see :mod:`elman.data.sequences`);
        the data spec records a stride over 1, its mode (and ``rule``, how it was chosen)."""
        check_stride(stride)
        check_stride_mode(mode)
        if stride == 1:
            return self
        x, lengths = strided(self.x_train, self.lengths_train, stride, mode)
        xt, lengths_test = strided(self.x_test, self.lengths_test, stride, mode)
        info = {**self.info, "stride": stride, "stride_mode": mode}
        if rule is not None:
            info["stride_rule"] = rule
        if "lengths" in info:  # the lengths the model reads
            both = np.concatenate([lengths, lengths_test])
            info["lengths"] = {**info["lengths"], **describe(both)["lengths"]}
        return dataclasses.replace(self, x_train=x, x_test=xt, lengths_train=lengths,
                                   lengths_test=lengths_test, info=info)

    def normalized(self, mean=None, std=None) -> ClassificationData:
        """Normalize with the given statistics, or with the training split's (real steps)."""
        if mean is None:
            mean, std = channel_statistics(self.x_train, self.lengths_train, self.source)
        return ClassificationData(
            source=self.source,
            x_train=normalize(self.x_train, mean, std, self.lengths_train),
            y_train=self.y_train,
            x_test=normalize(self.x_test, mean, std, self.lengths_test),
            y_test=self.y_test,
            classes=self.classes,
            mean=mean,
            std=std,
            info=self.info,
            lengths_train=self.lengths_train,
            lengths_test=self.lengths_test,
        )


def channel_statistics(x: np.ndarray, lengths: np.ndarray, where: str
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over the real steps; refuses a statistic that is not finite."""
    real = x[mask(lengths, x.shape[1])]  # (steps, C)
    with np.errstate(over="ignore", invalid="ignore"):
        mean = real.mean(axis=0)
        std = real.std(axis=0)
    for c in range(x.shape[2]):
        if not (np.isfinite(mean[c]) and np.isfinite(std[c])):
            big = float(np.abs(real[:, c]).max())
            raise DataError(
                f"{where}: channel {c}: the training data's mean or standard deviation is not a "
                f"finite number (values up to {big:.3g} overflow float64 arithmetic); rescale "
                "this channel")
    return mean, np.where(std > 1e-12, std, 1.0)


def normalize(x: np.ndarray, mean: np.ndarray, std: np.ndarray,
              lengths: np.ndarray | None = None) -> np.ndarray:
    """The input normalization every stage applies: float64 arithmetic, float32 result.

    With ``lengths``, the steps after each sequence's end stay zero.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        out = ((np.asarray(x, np.float64) - mean) / std).astype(np.float32)
    if lengths is not None:
        out[~mask(lengths, x.shape[1])] = 0.0
    if not np.isfinite(out).all():
        n, t, c = (int(v[0]) for v in np.nonzero(~np.isfinite(out)))
        raise DataError(f"normalized input [{n}, {t}, {c}] is not a finite float32 "
                        f"(channel {c}: mean {mean[c]:.6g}, std {std[c]:.6g})")
    return out


def classification_data(source: str, train: tuple, test: tuple, classes: list[str],
                        info: dict[str, Any]) -> RawClassification:
    """Raw data from ((x, y, lengths) train, (x, y, lengths) test); the test split padded to
    the same number of steps as the training split (or the other way round)."""
    (x, y, n), (xt, yt, nt) = train, test
    if x.shape[2] != xt.shape[2]:
        raise DataError(f"{source}: training data has {x.shape[2]} channels, test data "
                        f"{xt.shape[2]}")
    steps = max(x.shape[1], xt.shape[1])
    return RawClassification(source, _pad_to(x, steps), y, _pad_to(xt, steps), yt, classes,
                             info, np.asarray(n, np.int64), np.asarray(nt, np.int64))


def _pad_to(x: np.ndarray, steps: int) -> np.ndarray:
    if x.shape[1] == steps:
        return x
    out = np.zeros((x.shape[0], steps, x.shape[2]), x.dtype)
    out[:, : x.shape[1]] = x
    return out


def holdout_split(n: int, where: str, fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices): the test split is the last ``fraction`` of
    numpy ``default_rng(0).permutation(n)``."""
    if n < 5:
        raise DataError(f"{where}: {n} sequences are too few to split off a test set")
    order = np.random.default_rng(0).permutation(n)
    n_test = max(1, round(n * fraction))
    return np.sort(order[:-n_test]), np.sort(order[-n_test:])


HOLDOUT_SPLIT = "last 20% of numpy default_rng(0).permutation(N) is test"


def load_dataset(spec: str, *, max_chars: int | None = None,
                 max_length: int | None = None, stride: int | None = 1,
                 stride_mode: str = DEFAULT_STRIDE_MODE,
                 deltas: str = DEFAULT_DELTAS) -> RunData:
    """Load the dataset named by ``spec`` (see the module docstring).

    ``max_chars`` (text only) keeps the first ``max_chars`` training characters
    and the first ``max(max_chars // 9, 1000)`` validation characters: for quick runs.
    ``max_length`` (sequences) keeps the last ``max_length`` samples of longer
    sequences; ``stride`` reads them at 1/``stride`` of their rate (``stride_mode``: the
    mean of each window of ``stride`` samples, or its first sample), ``None``: at the stride
    of :func:`~elman.data.sequences.auto_stride` (see :mod:`elman.data.sequences`);
    ``deltas`` (``on``, ``off``, ``auto``: from the data) follows each sample with its
    first difference before the stride (:func:`with_deltas_choice`).
    """
    check_deltas(deltas)
    kind, sep, name = spec.partition(":")
    if not sep or not name:
        raise DataError(f"data spec {spec!r} must look like KIND:NAME "
                        f"({', '.join(k + ':' for k in KINDS)})")
    data = load_raw(kind, name, max_chars=max_chars, max_length=max_length)
    if not isinstance(data, RawClassification):
        if stride not in (None, 1):
            raise DataError("--stride applies to sequences, not to text")
        if deltas == "on":
            raise DataError("--deltas applies to sequences, not to text")
        return data
    return with_stride(with_deltas_choice(data, deltas, stride, stride_mode), stride,
                       stride_mode).normalized()


def with_deltas_choice(data: RawClassification, deltas: str, stride: int | None = 1,
                       stride_mode: str = DEFAULT_STRIDE_MODE) -> RawClassification:
    """``data`` with each sample followed by its first difference where ``deltas`` is
    ``on``, or ``auto`` and :func:`~elman.data.sequences.auto_deltas` says so for the
    ``stride`` and ``stride_mode`` it will be read at."""
    check_deltas(deltas)
    if deltas == "off":
        return data
    per_step = data.y_train.ndim == 2
    if deltas == "on":
        if per_step:
            raise DataError(f"--deltas applies to one label per sequence; {data.source} has a "
                            "label per step")
        return data.with_deltas()
    if per_step:
        return data
    use, why = auto_deltas(data.lengths_train, data.x_train.shape[2], data.smallest_class,
                           stride, stride_mode)
    return data.with_deltas(why) if use else data


def with_stride(data: RawClassification, stride: int | None,
                mode: str = DEFAULT_STRIDE_MODE) -> RawClassification:
    """``data`` at ``stride`` in ``mode`` (None: the automatic stride, for one label per
    sequence)."""
    check_stride_mode(mode, STRIDE_MODE_CHOICES)
    if stride is not None and stride != 1 and data.y_train.ndim == 2:
        raise DataError(f"--stride applies to one label per sequence; {data.source} has a "
                        "label per step")
    if data.y_train.ndim == 2:
        return data  # a label per step: streams keep their sampling rate
    if mode == "auto":
        k, chosen, why = auto_stride_mode(data.lengths_train, data.x_train.shape[2],
                                          data.smallest_class, stride)
        return data.strided(k, chosen, why)
    if stride is not None:
        return data.strided(stride, mode)
    return data.strided(auto_stride(data.lengths_train), mode,
                        "auto: " + median_rule(data.lengths_train, STRIDE_TARGET))


def load_raw(kind: str, name: str, *, max_chars: int | None = None,
             max_length: int | None = None) -> RawClassification | TextData:
    """The data of source ``kind:name`` before normalization (text: encoded)."""
    if kind == "sensor":
        from elman.data.streams import STREAM_DATASETS, load_stream

        if name.lower() in STREAM_DATASETS:
            if max_length is not None:
                raise DataError(f"--max-length does not apply to sensor:{name} (streams of "
                                "whole recordings)")
            return load_stream(name.lower())
    if kind in ("sensor", "ts"):
        from elman.data import ts_datasets

        if kind == "sensor":
            return ts_datasets.load_sensor(name, max_length)
        return ts_datasets.load_ts(Path(name), max_length)
    if kind == "npz":
        from elman.data import npz_format

        return npz_format.load_npz(Path(name), max_length)
    if kind == "csv":
        from elman.data import csv_format

        return csv_format.load_csv(name, max_length)
    if kind == "text":
        if max_length is not None:
            raise DataError("--max-length applies to sequences, not to text (see --max-chars)")
        return _load_text(name, max_chars)
    raise DataError(f"unknown data kind {kind!r} in '{kind}:{name}' "
                    f"(use {', '.join(k + ':' for k in KINDS)})")


# --- text --------------------------------------------------------------------------


def _load_text(name: str, max_chars: int | None) -> TextData:
    if name == "fortunes":
        train, val = text_corpus.fortunes_split()
        source, info = "text:fortunes", {"split": "quotation, CRC-32 mod 10 == 0 is validation"}
    else:
        path = Path(name)
        train, val, method = text_corpus.text_file_split(path)
        source = f"text:{name}"
        info = {"split": method, "files": {path.name: sha256_file(path)},
                "path": str(path.resolve())}
    vocab = sorted(set(train) | set(val))
    if max_chars is not None:
        if max_chars < 100:
            raise DataError(f"max_chars must be at least 100, got {max_chars}")
        train, val = train[:max_chars], val[: max(max_chars // 9, 1000)]
        info["max_chars"] = max_chars
    index = {c: i for i, c in enumerate(vocab)}
    return TextData(
        source=source,
        train_ids=np.array([index[c] for c in train], dtype=np.int32),
        val_ids=np.array([index[c] for c in val], dtype=np.int32),
        vocab=vocab,
        info=info,
    )


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
