"""``npz:PATH``: sequence classification data in a numpy ``.npz`` file.

Arrays (names are fixed; ``np.savez(path, x=..., y=...)``):

- ``x``: float (N, T, C), or (N, T) for one channel (C = 1);
- ``y``: (N,) class labels: integers (any values, e.g. 3 and 7, or uint64) or
  strings (``np.array(names, dtype=str)``; object arrays need pickle and are refused);
  or (N, T), one label per step (a streaming classifier: one answer per sample);
- ``lengths`` (optional): (N,) the true length of each sequence, 1..T; the steps
  after it are ignored (they may hold anything, NaN included). Without it, NaN in
  every channel after a sequence's last real step marks the end;
- ``classes`` (optional): (K,) class names; integer labels then index it (0..K-1),
  string labels must be among them, and the class order is ``classes``';
- ``x_test``, ``y_test``, ``lengths_test`` (optional): the test split, else the last
  20% of a fixed (seed 0) permutation of the sequences is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from elman.data.datasets import (
    HOLDOUT_SPLIT,
    RawClassification,
    classification_data,
    holdout_split,
    sha256_file,
)
from elman.data.labels import encode_labels
from elman.data.sequences import check_far_longer, check_max_length, describe, end_padding

from elman.errors import DataError

KNOWN = ("x", "y", "lengths", "classes", "x_test", "y_test", "lengths_test")


def load_npz(path: Path, max_length: int | None = None) -> RawClassification:
    source = f"npz:{path}"
    arrays = _read(path)
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"{path}: array {key!r} missing (found: {sorted(arrays) or 'none'})")
    unknown = sorted(set(arrays) - set(KNOWN))
    if unknown:
        raise DataError(f"{path}: unknown arrays {unknown} (known: {', '.join(KNOWN)})")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{path}: give both x_test and y_test, or neither")
    if "lengths_test" in arrays and "x_test" not in arrays:
        raise DataError(f"{path}: lengths_test without x_test")
    x, n = _sequences(path, arrays, "x", "lengths")
    y = arrays["y"]
    _check_count(path, x, y, "x", "y")
    info: dict[str, Any] = {"files": {path.name: sha256_file(path)}, "path": str(path.resolve())}
    if "x_test" in arrays:
        xt, nt = _sequences(path, arrays, "x_test", "lengths_test")
        yt = arrays["y_test"]
        _check_count(path, xt, yt, "x_test", "y_test")
        if xt.shape[2] != x.shape[2]:
            raise DataError(f"{path}: x_test has {xt.shape[2]} channels, x {x.shape[2]}")
        if max_length is None:
            check_far_longer(np.concatenate([n, nt]), [f"x[{i}]" for i in range(len(n))]
                             + [f"x_test[{i}]" for i in range(len(nt))], str(path))
        info["split"] = "x/y train, x_test/y_test test"
    else:
        if max_length is None:
            check_far_longer(n, [f"x[{i}]" for i in range(len(n))], str(path))
        train_idx, test_idx = holdout_split(len(x), str(path))
        x, xt, n, nt, y, yt = (x[train_idx], x[test_idx], n[train_idx], n[test_idx],
                               y[train_idx], y[test_idx])
        info["split"] = HOLDOUT_SPLIT
    classes = arrays.get("classes")
    if classes is not None and (classes.ndim != 1 or classes.dtype.kind not in "US"):
        raise DataError(f"{path}: classes must be a (K,) array of strings, got "
                        f"{classes.dtype} {classes.shape}")
    y, yt, names = encode_labels(y, yt, str(path), classes=None if classes is None
                                 else classes.astype(str).tolist())
    cut = 0
    if max_length is not None and y.ndim == 2:
        raise DataError(f"{path}: --max-length does not apply to per-step labels (y of shape "
                        "(N, T)); cut the streams yourself")
    if max_length is not None:
        cut = int((np.concatenate([n, nt]) > max_length).sum())
        x, n = _keep_last(x, n, max_length)
        xt, nt = _keep_last(xt, nt, max_length)
    info.update(describe(np.concatenate([n, nt]), max_length, cut))
    return classification_data(source, (x, y, n), (xt, yt, nt), names, info)


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(f"{path}: holds a Python object array, which elman does not load "
                            "(it would run pickle); store strings as np.array(names, dtype=str)"
                            ) from None
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    except Exception as exc:  # zipfile / format errors from numpy
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None


def _sequences(path: Path, arrays: dict, xn: str, ln: str) -> tuple[np.ndarray, np.ndarray]:
    """(float64 (N, T, C) with zeros after each end, int64 lengths (N,))."""
    x = arrays[xn]
    if x.ndim == 2:
        x = x[:, :, None]  # univariate: (N, T) is C = 1
    if x.ndim != 3:
        raise DataError(f"{path}: {xn} must have shape (N, T, C), or (N, T) for one channel, "
                        f"got {x.shape}")
    if 0 in x.shape:
        raise DataError(f"{path}: {xn} has an empty dimension: shape (N, T, C) = {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise DataError(f"{path}: {xn} must be real numbers, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if ln in arrays:
        lengths = arrays[ln]
        if lengths.shape != (len(x),) or lengths.dtype.kind not in "iu":
            raise DataError(f"{path}: {ln} must be ({len(x)},) integers, got {lengths.dtype} "
                            f"{lengths.shape}")
        bad = (lengths < 1) | (lengths > x.shape[1])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: {ln}[{i}] = {int(lengths[i])} is outside 1..{x.shape[1]} "
                            f"(the steps of {xn})")
        lengths = lengths.astype(np.int64)
        inside = np.arange(x.shape[1])[None, :] < lengths[:, None]
        bad = ~np.isfinite(x) & inside[:, :, None]
        if bad.any():
            i, t, c = (int(v[0]) for v in np.nonzero(bad))
            raise DataError(f"{path}: {xn} contains NaN or inf (first at [{i}, {t}, {c}], "
                            f"inside sequence {i} of length {int(lengths[i])})")
    elif np.isnan(x).any() and not np.isinf(x).any():
        lengths = end_padding(x, str(path), xn)
    else:
        if not np.isfinite(x).all():
            i, t, c = (int(v[0]) for v in np.nonzero(~np.isfinite(x)))
            raise DataError(f"{path}: {xn} contains NaN or inf (first at [{i}, {t}, {c}])")
        lengths = np.full(len(x), x.shape[1], np.int64)
    x[np.arange(x.shape[1])[None, :] >= lengths[:, None]] = 0.0
    return x, lengths


def _check_count(path: Path, x: np.ndarray, y: np.ndarray, xn: str, yn: str) -> None:
    if y.ndim not in (1, 2) or (y.ndim == 2 and y.shape != x.shape[:2]):
        raise DataError(f"{path}: {yn} must have shape (N,) (one label per sequence) or "
                        f"(N, T) = {x.shape[:2]} (one label per step), got {y.shape}")
    if len(y) != len(x):
        raise DataError(f"{path}: {xn} has {len(x)} sequences but {yn} has {len(y)} labels")


def _keep_last(x: np.ndarray, lengths: np.ndarray, max_length: int):
    """The last ``max_length`` samples of each longer sequence."""
    check_max_length(max_length)
    short = np.zeros((x.shape[0], min(x.shape[1], max_length), x.shape[2]))
    for i, length in enumerate(lengths):
        keep = min(int(length), max_length)
        short[i, :keep] = x[i, length - keep: length]
    return short, np.minimum(lengths, max_length)
