"""``csv:PATH``: one row per sample, one column per channel, a label and a sequence id.

The common layout of sensor logs::

    sequence,ax,ay,az,label
    walk-01,0.12,9.81,0.03,walking
    walk-01,0.15,9.79,0.01,walking
    ...

- The first row names the columns; ``,``, ``;`` and tab separate them.
- The label column is named ``label``, ``class``, ``y`` or ``target``; the sequence
  id column ``sequence``, ``sequence_id``, ``seq``, ``series``, ``id``, ``trial`` or
  ``recording`` (any case). Every other column is a channel and must hold numbers.
- Rows with the same sequence id form one sequence, in file order (they need not
  be adjacent); a sequence has one label. Sequences may differ in length.
- A ``split`` column (``train`` / ``test``) chooses the test split per sequence;
  without it the last 20% of a fixed (seed 0) permutation of the sequences is.
- Options after ``?`` name columns explicitly:
  ``csv:log.csv?label=activity&sequence=trial&split=part&channels=ax,ay,az``
  (``channels``: use only these, in this order; other columns are ignored).
"""

from __future__ import annotations

import csv
from pathlib import Path
from urllib.parse import parse_qs

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

from elman.errors import DataError

LABEL_NAMES = ("label", "class", "y", "target")
SEQUENCE_NAMES = ("sequence", "sequence_id", "seq", "series", "id", "trial", "recording")
OPTIONS = ("label", "sequence", "split", "channels")


def load_csv(name: str, max_length: int | None = None) -> RawClassification:
    path_text, _, query = name.partition("?")
    path = Path(path_text)
    options = _options(query, name)
    rows, header = _read(path)
    label_col = _column(header, options.get("label"), LABEL_NAMES, "label", path)
    seq_col = _column(header, options.get("sequence"), SEQUENCE_NAMES, "sequence id", path)
    split_col = _column(header, options.get("split"), ("split",), "split", path, required=False)
    special = {label_col, seq_col, split_col} - {None}
    if "channels" in options:
        channels = [_column(header, c, (), "channel", path) for c in options["channels"].split(",")]
        if special & set(channels):
            raise DataError(f"{path}: column {header[min(special & set(channels))]!r} cannot be "
                            "both a channel and the label, sequence id or split")
    else:
        channels = [i for i in range(len(header)) if i not in special]
    if not channels:
        raise DataError(f"{path}: no channel columns besides the label and the sequence id")

    order: dict[str, list[int]] = {}
    for r, row in enumerate(rows):
        order.setdefault(row[seq_col], []).append(r)
    values = _numbers(rows, channels, header, path)
    series, labels, splits, names = [], [], [], []
    for seq, idx in order.items():
        first = rows[idx[0]]
        for col, what in ((label_col, "label"), (split_col, "split")):
            if col is None:
                continue
            other = next((r for r in idx if rows[r][col] != first[col]), None)
            if other is not None:
                raise DataError(f"{path}: sequence {seq!r} has {what} {first[col]!r} on line "
                                f"{idx[0] + 2} and {rows[other][col]!r} on line {other + 2}")
        series.append(values[idx])
        labels.append(first[label_col])
        names.append(f"{seq!r} (line {idx[0] + 2})")
        if split_col is not None:
            splits.append(first[split_col].strip().lower())
    is_test = _test_split(splits, len(series), path)
    x, lengths, shape_info = stack(series, names, str(path), max_length)
    labels_arr = np.array(labels, dtype=str)
    y, yt, classes = encode_labels(labels_arr[~is_test], labels_arr[is_test], str(path),
                                   names=("training labels", "test labels"))
    info = {"files": {path.name: sha256_file(path)}, "path": str(path.resolve()),
            "split": "the split column" if split_col is not None else HOLDOUT_SPLIT,
            "columns": {"label": header[label_col], "sequence": header[seq_col],
                        "channels": [header[c] for c in channels]},
            **shape_info}
    if query:
        info["options"] = query
    return classification_data(f"csv:{name}", (x[~is_test], y, lengths[~is_test]),
                               (x[is_test], yt, lengths[is_test]), classes, info)


def _options(query: str, name: str) -> dict[str, str]:
    if not query:
        return {}
    parsed = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(parsed) - set(OPTIONS))
    if unknown:
        raise DataError(f"csv:{name}: unknown option {unknown[0]!r} (known: {', '.join(OPTIONS)})")
    return {k: v[-1] for k, v in parsed.items()}


def _read(path: Path) -> tuple[list[list[str]], list[str]]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise DataError(f"{path}: empty file (expected a header row naming the columns)")
    try:
        dialect = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(lines, dialect)
    header = [h.strip() for h in next(reader)]
    if len(set(h.lower() for h in header)) != len(header):
        raise DataError(f"{path}: the header names a column twice: {header}")
    rows = []
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise DataError(f"{path}:{line_no}: {len(row)} fields, the header has {len(header)}")
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no data rows after the header")
    return rows, header


def _column(header: list[str], given: str | None, candidates: tuple[str, ...], what: str,
            path: Path, required: bool = True) -> int | None:
    lower = [h.lower() for h in header]
    if given is not None:
        if given.lower() not in lower:
            raise DataError(f"{path}: no column {given!r} (columns: {', '.join(header)})")
        return lower.index(given.lower())
    found = [lower.index(c) for c in candidates if c in lower]
    if len(found) > 1:
        raise DataError(f"{path}: several columns could be the {what} "
                        f"({', '.join(header[i] for i in found)}); name one with "
                        f"csv:{path}?{what.split()[0]}=COLUMN")
    if not found:
        if not required:
            return None
        raise DataError(f"{path}: no {what} column (named one of {', '.join(candidates)}; or "
                        f"name it: csv:{path}?{what.split()[0]}=COLUMN)")
    return found[0]


def _numbers(rows: list[list[str]], channels: list[int], header: list[str], path: Path
             ) -> np.ndarray:
    out = np.empty((len(rows), len(channels)), np.float64)
    for j, c in enumerate(channels):
        cells = [row[c] for row in rows]
        try:
            out[:, j] = np.array(cells, dtype=np.float64)
            bad = np.flatnonzero(~np.isfinite(out[:, j]))
        except ValueError:  # a cell that is not a number: find the first
            bad = [next(r for r, cell in enumerate(cells) if not _is_number(cell))]
        if len(bad):
            r = int(bad[0])
            cell = cells[r].strip()
            what = ("is empty (a missing value; elman does not impute)" if not cell
                    else f"is {cell!r}, not a finite number")
            raise DataError(f"{path}:{r + 2}: column {header[c]!r} {what}")
    return out


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _test_split(splits: list[str], n: int, path: Path) -> np.ndarray:
    if not splits:
        _, test_idx = holdout_split(n, str(path))
        is_test = np.zeros(n, bool)
        is_test[test_idx] = True
        return is_test
    unknown = sorted(set(splits) - {"train", "test"})
    if unknown:
        raise DataError(f"{path}: split column values must be train or test, found {unknown[0]!r}")
    is_test = np.array([s == "test" for s in splits])
    if is_test.all() or not is_test.any():
        raise DataError(f"{path}: the split column needs both train and test sequences")
    return is_test
