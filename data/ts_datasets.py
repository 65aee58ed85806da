"""``.ts`` data sets: the built-in ``sensor:`` names and a user's ``ts:PATH``.

- ``sensor:basicmotions``, ``sensor:gunpoint``, ``sensor:pickupgesturewiimotez``:
  the UEA/UCR archive files shipped inside the ``aeon`` wheel (or ``sktime``),
  located with :func:`importlib.util.find_spec` without importing the package;
  the archive's TRAIN / TEST files are the split.
- ``ts:PATH``: a ``.ts`` file. When PATH ends in ``_TRAIN.ts`` and the
  ``_TEST.ts`` file beside it exists, that is the test split; otherwise the
  last 20% of a fixed (seed 0) permutation of PATH's series is.

Class names come from the header's ``@classLabel`` list (its order), else the
sorted training labels. Unequal lengths are kept (:mod:`elman.data.sequences`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from elman.data.datasets import (
    HOLDOUT_SPLIT,
    RawClassification,
    classification_data,
    holdout_split,
    sha256_file,
)
from elman.data.labels import encode_labels
from elman.data.sequences import stack
from elman.data.ts_format import TsData, read_ts

from elman.errors import DataError

SENSOR_DATASETS = {
    "basicmotions": "BasicMotions",
    "gunpoint": "GunPoint",
    "pickupgesturewiimotez": "PickupGestureWiimoteZ",
}


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


def load_sensor(name: str, max_length: int | None = None) -> RawClassification:
    key = name.lower()
    if key not in SENSOR_DATASETS:
        known = ", ".join(f"sensor:{k}" for k in SENSOR_DATASETS)
        raise DataError(f"unknown built-in data set 'sensor:{name}' (known: {known}; "
                        "other .ts files: ts:PATH)")
    archive = SENSOR_DATASETS[key]
    d = archive_dir(archive)
    train, test = d / f"{archive}_TRAIN.ts", d / f"{archive}_TEST.ts"
    info = {"split": "archive TRAIN / TEST files"}
    return _from_files(f"sensor:{key}", read_ts(train), read_ts(test), [train, test], info,
                       max_length)


def load_ts(path: Path, max_length: int | None = None) -> RawClassification:
    source = f"ts:{path}"
    data = read_ts(path)
    test_path = path.with_name(path.name[: -len("_TRAIN.ts")] + "_TEST.ts")
    info = {"path": str(path.resolve())}
    if path.name.endswith("_TRAIN.ts") and test_path.is_file():
        info["split"] = f"{path.name} / {test_path.name}"
        return _from_files(source, data, read_ts(test_path), [path, test_path], info, max_length)
    train_idx, test_idx = holdout_split(len(data.series), str(path))
    info["split"] = HOLDOUT_SPLIT
    return _from_files(source, _subset(data, train_idx), _subset(data, test_idx), [path], info,
                       max_length)


def _subset(data: TsData, idx: np.ndarray) -> TsData:
    pick = [int(i) for i in idx]
    return TsData(data.problem, data.class_labels, [data.series[i] for i in pick],
                  [data.labels[i] for i in pick], [data.rows[i] for i in pick])


def _from_files(source: str, train: TsData, test: TsData, files: list[Path], info: dict,
                max_length: int | None) -> RawClassification:
    if train.channels != test.channels:
        raise DataError(f"{source}: train has {train.channels} channels, test {test.channels}")
    declared = list(train.class_labels)
    y, yt, classes = encode_labels(
        np.array(train.labels, dtype=str), np.array(test.labels, dtype=str), source,
        classes=declared or None, names=("training labels", "test labels"))
    names = [f"{files[0].name}:{r}" for r in train.rows]
    names += [f"{files[-1].name}:{r}" for r in test.rows]
    x_all, lengths, shape_info = stack([s.T for s in train.series + test.series], names,
                                       source, max_length)
    n = len(train.series)
    info = {"files": {p.name: sha256_file(p) for p in files}, **info, **shape_info}
    return classification_data(source, (x_all[:n], y, lengths[:n]),
                               (x_all[n:], yt, lengths[n:]), classes, info)
