"""Class labels as users have them -> class indices 0..K-1 and class names.

Accepted label arrays: integers of any width (``uint64`` included: names are the
exact values, never wrapped), floats holding whole numbers (below 2**53 in
magnitude), booleans, and strings. Without ``classes`` the class order is the
sorted set of the training labels. With ``classes`` (a list of names):

- integer labels must lie in ``0 .. len(classes) - 1`` and index it;
- string labels must each be one of the names; the class order is ``classes``'.

Every test label must be a training class (a class the model never saw cannot
be predicted). At least two classes are needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from elman.errors import DataError

EXACT_FLOAT_INTEGER = 2**53


def encode_labels(y_train: np.ndarray, y_test: np.ndarray, where: str, *,
                  classes: Sequence[str] | None = None, names: tuple[str, str] = ("y", "y_test")
                  ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(int64 class indices of the training labels, of the test labels, class names).

    Labels are (N,), one per sequence, or (N, T), one per step (a streaming
    classifier); both splits the same way.
    """
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if y_train.ndim == 2 or y_test.ndim == 2:
        if y_train.ndim != y_test.ndim:
            raise DataError(f"{where}: {names[0]} and {names[1]} must both have one label per "
                            f"sequence or both one per step, got {y_train.shape} and "
                            f"{y_test.shape}")
        flat_train, flat_test, found = encode_labels(y_train.reshape(-1), y_test.reshape(-1),
                                                     where, classes=classes, names=names)
        return flat_train.reshape(y_train.shape), flat_test.reshape(y_test.shape), found
    y_train = _labels(y_train, where, names[0])
    y_test = _labels(y_test, where, names[1])
    if y_train.dtype.kind != y_test.dtype.kind and "U" in (y_train.dtype.kind, y_test.dtype.kind):
        raise DataError(f"{where}: {names[0]} and {names[1]} must both be numbers or both strings")
    if classes is not None:
        return _with_classes(y_train, y_test, list(classes), where, names)
    values = np.unique(y_train)
    unseen = np.setdiff1d(np.unique(y_test), values)
    if unseen.size:
        shown = ", ".join(_name(v) for v in unseen[:10])
        raise DataError(f"{where}: {names[1]} labels {shown} do not occur in the training labels")
    class_names = [_name(v) for v in values]
    _check_class_names(class_names, where, "labels")
    return (np.searchsorted(values, y_train).astype(np.int64),
            np.searchsorted(values, y_test).astype(np.int64), class_names)


def check_class_names(classes: Sequence[str], where: str) -> list[str]:
    """A user's class names: at least two, distinct, non-empty, one line each."""
    names = [str(c) for c in classes]
    _check_class_names(names, where, "classes")
    return names


def _labels(y: np.ndarray, where: str, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{where}: {name} must have shape (N,), got {y.shape}")
    kind = y.dtype.kind
    if kind in "iu":
        return y
    if kind == "b":
        return y.astype(np.int64)
    if kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y)) | (np.abs(y) >= EXACT_FLOAT_INTEGER)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{where}: {name}[{i}] = {y[i].item()!r} is not a whole number below "
                            "2**53; use integer class labels (or strings)")
        return y.astype(np.int64)
    if kind in "US":
        y = y.astype(str)
        return y
    raise DataError(f"{where}: {name} must be integer or string class labels, got dtype {y.dtype}")


def _with_classes(y_train, y_test, classes: list[str], where: str, names: tuple[str, str]):
    classes = check_class_names(classes, where)
    out = []
    for y, name in ((y_train, names[0]), (y_test, names[1])):
        if y.dtype.kind == "U":
            index = {c: i for i, c in enumerate(classes)}
            unknown = sorted(set(np.unique(y).tolist()) - set(index))
            if unknown:
                raise DataError(f"{where}: {name} labels {unknown[:10]} are not in 'classes' "
                                f"({len(classes)} names)")
            out.append(np.array([index[v] for v in y.tolist()], np.int64))
        else:
            bad = (y < 0) | (y >= len(classes))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError(f"{where}: {name}[{i}] = {_name(y[i])} is outside "
                                f"0..{len(classes) - 1} (the indices of the {len(classes)} "
                                "names in 'classes')")
            out.append(y.astype(np.int64))
    unseen = np.setdiff1d(out[1], out[0])
    if unseen.size:
        shown = ", ".join(classes[int(i)] for i in unseen[:10])
        raise DataError(f"{where}: {names[1]} labels {shown} do not occur in the training labels")
    return out[0], out[1], classes


def _name(v) -> str:
    return str(v.item() if isinstance(v, np.generic) else v)


def _check_class_names(names: list[str], where: str, what: str) -> None:
    if len(names) < 2:
        raise DataError(f"{where}: needs at least 2 classes, found {len(names)}")
    if len(set(names)) != len(names):
        raise DataError(f"{where}: {what} name a class twice")
    for n in names:
        if not n.strip() or any(ch in n for ch in "\n\r\0"):
            raise DataError(f"{where}: class name {n!r} must be non-empty text on one line")
