"""``data_spec.json``: what a run was trained on, re-loaded by every later stage.

:func:`load_run_data` reads the spec of a run directory and loads the same data
again: classification inputs normalized with the *stored* statistics, text
encoded with the *stored* vocabulary. A source file that changed since
training is an error.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from elman.data.datasets import SPEC_FORMAT, RawClassification, RunData, TextData, load_raw

from elman import rundir
from elman.errors import DataError


def load_run_data(run_dir: Path | str) -> RunData:
    """Re-load the data a run was trained on, from its ``data_spec.json``."""
    path = rundir.require(run_dir, rundir.DATA_SPEC)
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if spec.get("format") != SPEC_FORMAT:
        raise DataError(f"{path}: unknown format {spec.get('format')!r} (expected {SPEC_FORMAT})")
    source = spec["source"]
    kind, _, name = source.partition(":")
    if "path" in spec:  # user files: the absolute path recorded at training time
        name = spec["path"]
    data: RunData | RawClassification = load_raw(kind, name, max_chars=spec.get("max_chars"))
    data = dataclasses.replace(data, source=source)
    stored_files, files = spec.get("files", {}), data.info.get("files", {})
    for fname, digest in stored_files.items():
        if files.get(fname) != digest:
            raise DataError(f"{fname} changed since training (SHA-256 differs from {path})")
    if isinstance(data, TextData):
        if data.vocab != spec["vocab"]:
            raise DataError(f"{source}: the text's characters differ from the vocabulary in {path}")
        return data
    if spec["classes"] != data.classes:
        raise DataError(f"{source}: classes {data.classes} differ from {path}")
    norm = spec["input"]["normalization"]
    return data.normalized(np.array(norm["mean"], np.float64), np.array(norm["std"], np.float64))
