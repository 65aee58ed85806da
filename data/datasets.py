"""Datasets: built-in sensor and text data, user ``.npz`` / text files, and ``data_spec.json``.

Specs accepted by :func:`load_dataset`:

- ``sensor:basicmotions``, ``sensor:gunpoint``, ``sensor:pickupgesturewiimotez``:
  UEA/UCR archive ``.ts`` files shipped inside the ``aeon`` wheel (or ``sktime``),
  located with :func:`importlib.util.find_spec` without importing the package.
- ``npz:PATH``: arrays ``x`` (N, T, C) float and ``y`` (N,) integer labels, optional
  ``x_test`` / ``y_test``; without them the last 20% of a fixed (seed 0)
  permutation is the test split.
- ``text:fortunes`` and ``text:PATH``: see :mod:`elman.data.text_corpus`.

Classification inputs are normalized per channel with the training split's mean
and standard deviation (a channel with zero spread gets std 1); the statistics
are stored in ``data_spec.json`` so that every later stage sees exactly the
numbers the model saw (:func:`elman.data.spec.load_run_data`). Text is mapped to integer ids
with a vocabulary of every character of the corpus (both splits), sorted by
code point, stored in ``data_spec.json``.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from elman.data import text_corpus
from elman.data.ts_format import pad_front, read_ts

from elman.errors import DataError

SPEC_FORMAT = "elman-data-spec/1"

SENSOR_DATASETS = {
    "basicmotions": "BasicMotions",
    "gunpoint": "GunPoint",
    "pickupgesturewiimotez": "PickupGestureWiimoteZ",
}
TEXT_DATASETS = ("fortunes",)
NPZ_TEST_FRACTION = 0.2


@dataclass(frozen=True)
class ClassificationData:
    """Sequence classification data, normalized exactly as the model sees it."""

    source: str
    x_train: np.ndarray  # float32 (N, T, C)
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    mean: np.ndarray  # float64 (C,), raw units
    std: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)  # split, padding, file hashes
    task: str = "classification"

    @property
    def channels(self) -> int:
        return self.x_train.shape[2]

    @property
    def timesteps(self) -> int:
        return self.x_train.shape[1]

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
    """Classification data in raw units, before normalization."""

    source: str
    x_train: np.ndarray  # float64, raw units
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    info: dict[str, Any]

    def normalized(self, mean=None, std=None) -> ClassificationData:
        """Normalize with the given statistics, or with the training split's."""
        if mean is None:
            mean = self.x_train.mean(axis=(0, 1))
            std = self.x_train.std(axis=(0, 1))
            std = np.where(std > 1e-12, std, 1.0)
        return ClassificationData(
            source=self.source,
            x_train=normalize(self.x_train, mean, std),
            y_train=self.y_train,
            x_test=normalize(self.x_test, mean, std),
            y_test=self.y_test,
            classes=self.classes,
            mean=mean,
            std=std,
            info=self.info,
        )


def load_dataset(spec: str, *, max_chars: int | None = None) -> RunData:
    """Load the dataset named by ``spec`` (see the module docstring).

    ``max_chars`` (text only) keeps the first ``max_chars`` training characters
    and the first ``max(max_chars // 9, 1000)`` validation characters: for quick runs.
    """
    kind, sep, name = spec.partition(":")
    if not sep or not name:
        raise DataError(f"data spec {spec!r} must look like KIND:NAME (sensor:, text:, npz:)")
    data = load_raw(kind, name, max_chars=max_chars)
    return data.normalized() if isinstance(data, RawClassification) else data


def load_raw(kind: str, name: str, *, max_chars: int | None = None
             ) -> RawClassification | TextData:
    """The data of source ``kind:name`` before normalization (text: encoded)."""
    if kind == "sensor":
        key = name.lower()
        if key not in SENSOR_DATASETS:
            known = ", ".join(f"sensor:{k}" for k in SENSOR_DATASETS)
            raise DataError(f"unknown built-in data set 'sensor:{name}' (known: {known})")
        return _load_sensor(key)
    if kind == "npz":
        return _load_npz(Path(name))
    if kind == "text":
        return _load_text(name, max_chars)
    raise DataError(f"unknown data kind {kind!r} in '{kind}:{name}' (use sensor:, text: or npz:)")


# --- sensor (.ts) -----------------------------------------------------------------


def archive_dir(name: str) -> Path:
    """Directory holding ``<name>_TRAIN.ts`` in the installed aeon (or sktime) wheel."""
    tried = []
    for package in ("aeon", "sktime"):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            tried.append(f"{package} (not installed)")
            continue
        d = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name
        if (d / f"{name}_TRAIN.ts").is_file():
            return d
        tried.append(str(d))
    raise DataError(
        f"the {name} archive files were not found (tried {', '.join(tried)}); "
        "install them with: pip install --no-deps aeon==1.6.0"
    )


def _load_sensor(key: str) -> RawClassification:
    name = SENSOR_DATASETS[key]
    d = archive_dir(name)
    train, test = read_ts(d / f"{name}_TRAIN.ts"), read_ts(d / f"{name}_TEST.ts")
    classes = list(train.class_labels) or sorted(set(train.labels))
    if train.channels != test.channels:
        raise DataError(f"{name}: train has {train.channels} channels, test {test.channels}")
    length = max(train.lengths + test.lengths)
    equal = len(set(train.lengths + test.lengths)) == 1
    y_train = np.array([classes.index(v) for v in train.labels], dtype=np.int64)
    missing = sorted(set(test.labels) - set(classes))
    if missing:
        raise DataError(f"{name}: test labels {missing} do not occur in the training labels")
    y_test = np.array([classes.index(v) for v in test.labels], dtype=np.int64)
    info = {
        "files": {p.name: sha256_file(p) for p in (d / f"{name}_TRAIN.ts", d / f"{name}_TEST.ts")},
        "split": "archive TRAIN / TEST files",
        "padding": "none (equal length)"
        if equal
        else f"front, repeating each series' first sample, to {length} steps",
    }
    return _raw(
        f"sensor:{key}",
        pad_front(train.series, length),
        y_train,
        pad_front(test.series, length),
        y_test,
        classes,
        info,
    )


# --- npz ---------------------------------------------------------------------------


def _load_npz(path: Path) -> RawClassification:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile / format errors from numpy
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"{path}: array {key!r} missing (found: {sorted(arrays) or 'none'})")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{path}: give both x_test and y_test, or neither")
    x, y = _check_xy(path, arrays["x"], arrays["y"], "x", "y")
    info: dict[str, Any] = {"files": {path.name: sha256_file(path)}, "path": str(path.resolve())}
    if "x_test" in arrays:
        x_test, y_test = _check_xy(path, arrays["x_test"], arrays["y_test"], "x_test", "y_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(
                f"{path}: x_test steps/channels {x_test.shape[1:]} differ from x {x.shape[1:]}"
            )
        info["split"] = "x/y train, x_test/y_test test"
    else:
        if len(y) < 5:
            raise DataError(f"{path}: {len(y)} sequences are too few to split off a test set")
        order = np.random.default_rng(0).permutation(len(y))
        n_test = max(1, round(len(y) * NPZ_TEST_FRACTION))
        test_idx, train_idx = np.sort(order[-n_test:]), np.sort(order[:-n_test])
        x, y, x_test, y_test = x[train_idx], y[train_idx], x[test_idx], y[test_idx]
        info["split"] = "last 20% of numpy default_rng(0).permutation(N) is test"
    values = np.unique(y)
    unseen = sorted(set(np.unique(y_test).tolist()) - set(values.tolist()))
    if unseen:
        raise DataError(f"{path}: test labels {unseen} do not occur in the training labels")
    classes = [str(int(v)) for v in values]
    info["padding"] = "none"
    return _raw(
        f"npz:{path}",
        x,
        np.searchsorted(values, y).astype(np.int64),
        x_test,
        np.searchsorted(values, y_test).astype(np.int64),
        classes,
        info,
    )


def _check_xy(path: Path, x: np.ndarray, y: np.ndarray, xn: str, yn: str):
    if x.ndim != 3:
        raise DataError(f"{path}: {xn} must have shape (N, T, C), got {x.shape}")
    if 0 in x.shape:
        raise DataError(f"{path}: {xn} has an empty dimension: shape (N, T, C) = {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise DataError(f"{path}: {xn} must be real numbers, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        n, t, c = (int(v[0]) for v in np.nonzero(~np.isfinite(x)))
        raise DataError(f"{path}: {xn} contains NaN or inf (first at [{n}, {t}, {c}])")
    if y.ndim != 1:
        raise DataError(f"{path}: {yn} must have shape (N,), got {y.shape}")
    if len(y) != len(x):
        raise DataError(f"{path}: {xn} has {len(x)} sequences but {yn} has {len(y)} labels")
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all() or not np.array_equal(y, np.round(y)):
            raise DataError(f"{path}: {yn} must be integer class labels")
        y = y.astype(np.int64)
    elif not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: {yn} must be integer class labels, got dtype {y.dtype}")
    return x, y.astype(np.int64)


def _raw(source, x_train, y_train, x_test, y_test, classes, info) -> RawClassification:
    if len(classes) < 2:
        raise DataError(f"{source}: needs at least 2 classes, found {len(classes)}")
    return RawClassification(source, x_train, y_train, x_test, y_test, classes, info)


def normalize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The input normalization every stage applies: float64 arithmetic, float32 result."""
    return ((np.asarray(x, np.float64) - mean) / std).astype(np.float32)


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
