"""Reader for the UEA/UCR ``.ts`` time-series format (sktime/aeon archive files).

A ``.ts`` file is a header of ``@key value`` lines (``#`` lines are comments)
followed by ``@data`` and one line per series::

    @problemName BasicMotions
    @univariate false
    @dimensions 6
    @equalLength true
    @seriesLength 100
    @classLabel true Standing Running Walking Badminton
    @data
    0.07,0.07,...,-0.03:0.12,...:Standing

Channels of one series are separated by ``:``, values by ``,``; the class label
is the last ``:`` field. ``?`` (or ``NaN``) marks a missing value. Files with
``@timeStamps true`` (values written as ``(time,value)``) are not supported.

Policy (documented in the README):
- missing values inside a series are an error (they would silently poison the
  normalization statistics and the RNN state);
- trailing missing values are length padding and are dropped;
- series of unequal length are returned as they are (``TsData.series`` is a list
  of ``(C, T_i)`` arrays; :mod:`elman.data.sequences` pads them and keeps the lengths);
- the header's ``@dimensions``, ``@univariate``, ``@equalLength`` and
  ``@seriesLength`` must agree with the data (one error lists every disagreement).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from elman.errors import DataError


@dataclass(frozen=True)
class TsData:
    """One parsed ``.ts`` file."""

    problem: str
    class_labels: tuple[str, ...]  # as declared in the header (@classLabel)
    series: list[np.ndarray]  # each (channels, length) float64
    labels: list[str]  # one label per series
    rows: list[int]  # the file's line number of each series

    @property
    def channels(self) -> int:
        return self.series[0].shape[0]

    @property
    def lengths(self) -> list[int]:
        return [s.shape[1] for s in self.series]


def read_ts(path: Path | str) -> TsData:
    """Parse a ``.ts`` file; raise :class:`DataError` naming the line on any problem."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    header: dict[str, str] = {}
    lines = text.splitlines()
    data_start = None
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower() == "@data":
            data_start = i + 1
            break
        if not line.startswith("@"):
            raise DataError(f"{path}:{i + 1}: expected a header line '@key value' before @data")
        key, _, value = line[1:].partition(" ")
        header[key.lower()] = value.strip()
    if data_start is None:
        raise DataError(f"{path}: no @data section")
    if header.get("timestamps", "false").lower() == "true":
        raise DataError(f"{path}: @timeStamps true is not supported (values must be plain lists)")
    label_decl = header.get("classlabel", "false").split()
    if not label_decl or label_decl[0].lower() != "true":
        raise DataError(f"{path}: not a classification file (@classLabel true ... missing)")
    class_labels = tuple(label_decl[1:])

    series: list[np.ndarray] = []
    labels: list[str] = []
    rows: list[int] = []
    for i in range(data_start, len(lines)):
        line = lines[i].strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{i + 1}"
        *channel_fields, label = line.split(":")
        if not channel_fields:
            raise DataError(f"{where}: expected channels separated by ':' and a class label")
        label = label.strip()
        if class_labels and label not in class_labels:
            raise DataError(f"{where}: class label {label!r} not declared in @classLabel")
        series.append(_parse_series(channel_fields, where))
        labels.append(label)
        rows.append(i + 1)
    if not series:
        raise DataError(f"{path}: no series after @data")
    channels = {s.shape[0] for s in series}
    if len(channels) != 1:
        raise DataError(f"{path}: series have different channel counts {sorted(channels)}")
    check_header(path, header, series, rows)
    return TsData(header.get("problemname", path.stem), class_labels, series, labels, rows)


def check_header(path: Path, header: dict[str, str], series: list[np.ndarray],
                 rows: list[int]) -> None:
    """``@dimensions``, ``@univariate``, ``@equalLength`` and ``@seriesLength`` against the
    data: every disagreement in one error."""
    problems = []
    channels = series[0].shape[0]
    lengths = [s.shape[1] for s in series]
    flags = {}
    for key, shown in (("univariate", "@univariate"), ("equallength", "@equalLength")):
        if key in header:
            value = header[key].lower()
            if value not in ("true", "false"):
                problems.append(f"{shown} {header[key]!r} is not true or false")
            else:
                flags[key] = value == "true"
    numbers = {}
    for key, shown in (("dimensions", "@dimensions"), ("serieslength", "@seriesLength")):
        if key in header:
            try:
                numbers[key] = int(header[key])
            except ValueError:
                problems.append(f"{shown} {header[key]!r} is not a whole number")
    if "dimensions" in numbers and numbers["dimensions"] != channels:
        problems.append(f"@dimensions {numbers['dimensions']} but the series have "
                        f"{channels} channels")
    if flags.get("univariate") and channels != 1:
        problems.append(f"@univariate true but the series have {channels} channels")
    if flags.get("equallength", False) and len(set(lengths)) > 1:
        i = next(i for i, n in enumerate(lengths) if n != lengths[0])
        problems.append(f"@equalLength true but the series of line {rows[i]} has {lengths[i]} "
                        f"steps and that of line {rows[0]} {lengths[0]}")
    expected = numbers.get("serieslength")
    if expected is not None and flags.get("equallength", True):
        wrong = [i for i, n in enumerate(lengths) if n != expected]
        if wrong:
            problems.append(f"@seriesLength {expected} but the series of line {rows[wrong[0]]} "
                            f"has {lengths[wrong[0]]} steps ({len(wrong)} of {len(lengths)} "
                            "differ)")
    if problems:
        raise DataError(f"{path}: the header disagrees with the data: " + "; ".join(problems))


def _parse_series(channel_fields: list[str], where: str) -> np.ndarray:
    channels = []
    for c, field in enumerate(channel_fields):
        values = []
        for v in field.split(","):
            v = v.strip()
            if v in ("?", "") or v.lower() == "nan":
                values.append(np.nan)
                continue
            try:
                values.append(float(v))
            except ValueError:
                raise DataError(f"{where}: channel {c}: {v!r} is not a number") from None
        arr = np.asarray(values, dtype=np.float64)
        missing = np.isnan(arr)
        if missing.any():
            last_real = np.flatnonzero(~missing)
            end = int(last_real[-1]) + 1 if last_real.size else 0
            if missing[:end].any():
                raise DataError(
                    f"{where}: channel {c} has a missing value inside the series "
                    f"(position {int(np.flatnonzero(missing[:end])[0])}); elman does not impute"
                )
            arr = arr[:end]  # trailing missing values are length padding
        if not np.isfinite(arr).all():
            raise DataError(f"{where}: channel {c} contains inf")
        channels.append(arr)
    lengths = {len(a) for a in channels}
    if len(lengths) != 1:
        raise DataError(f"{where}: channels have different lengths {sorted(lengths)}")
    if 0 in lengths:
        raise DataError(f"{where}: empty series (length 0)")
    return np.stack(channels)
