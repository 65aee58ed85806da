"""``data_spec.json``: what a run was trained on, re-loaded by every later stage.

The file is written by ``elman train`` (:meth:`ClassificationData.spec
<elman.data.datasets.ClassificationData.spec>`, :meth:`TextData.spec
<elman.data.datasets.TextData.spec>`). Its fields:

- ``format``: ``elman-data-spec/1``; ``task``: ``classification`` or ``language_model``;
- ``source``: the ``--data`` value (``sensor:NAME``, ``npz:PATH``, ``text:PATH``, ...);
  ``path``: the absolute path of a user file; ``files``: the SHA-256 of each source
  file (a file that changed since training is refused);
- classification: ``classes`` (class names, in output order) and ``input``:
  ``channels``, ``timesteps`` and ``normalization`` (per-channel ``mean`` and ``std``,
  finite, std > 0), which every stage and the generated C apply;
- classification: ``lengths`` (min / max / median) and ``padding`` describe the
  sequence lengths (as the model reads them); ``max_length`` when longer sequences
  were cut to their last ``max_length`` samples (``--max-length``); ``stride``,
  ``stride_mode`` (``mean``: each step is the mean of ``stride`` samples; ``sample``, or
  absent: every ``stride``-th sample) and ``stride_rule`` when the model reads the
  sequences at 1/``stride`` of their rate (``--stride``); ``deltas`` (true) and
  ``deltas_rule`` when each sample is followed by its first difference (``--deltas``);
- text: ``vocab`` (one character per token id) and ``max_chars`` when training used
  a prefix of the corpus.

:func:`read_spec` checks all of this and names the first field that is wrong
(one :class:`~elman.errors.DataError`, never a ``KeyError``); :func:`load_run_data`
loads the same data again: classification inputs normalized with the *stored*
statistics, text encoded with the *stored* vocabulary.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from elman.data.datasets import (
    SPEC_FORMAT,
    RawClassification,
    RunData,
    TextData,
    load_raw,
    with_stride,
)
from elman.data.sequences import STRIDE_MODES

from elman import rundir
from elman.errors import DataError

TASKS = ("classification", "language_model")


@dataclass(frozen=True)
class DataSpec:
    """A checked ``data_spec.json``."""

    task: str
    source: str
    fields: dict[str, Any]  # the whole JSON object
    where: str  # the file, for messages

    @property
    def kind(self) -> str:
        return self.source.partition(":")[0]

    @property
    def name(self) -> str:
        """What the loader opens: the recorded absolute path of a user file (with its
        options, e.g. a CSV file's columns), else the name."""
        if "path" not in self.fields:
            return self.source.partition(":")[2]
        options = self.fields.get("options")
        return self.fields["path"] + (f"?{options}" if options else "")

    @property
    def files(self) -> dict[str, str]:
        return self.fields.get("files", {})

    @property
    def classes(self) -> list[str]:
        return self.fields["classes"]

    @property
    def vocab(self) -> list[str]:
        return self.fields["vocab"]

    @property
    def mean(self) -> np.ndarray:
        return np.array(self.fields["input"]["normalization"]["mean"], np.float64)

    @property
    def std(self) -> np.ndarray:
        return np.array(self.fields["input"]["normalization"]["std"], np.float64)


def read_spec(path: Path | str) -> DataSpec:
    """Read and check a ``data_spec.json``; a problem raises one :class:`DataError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a data spec") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    try:
        fields = json.loads(text, parse_constant=_no_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    return check_spec(fields, str(path))


def check_spec(fields: Any, where: str) -> DataSpec:
    """Check the fields of a data spec (a parsed JSON object); ``where`` names it in errors."""
    if not isinstance(fields, dict):
        raise DataError(f"{where}: a data spec is a JSON object, got {type(fields).__name__}")
    if fields.get("format") != SPEC_FORMAT:
        raise DataError(f"{where}: unknown format {fields.get('format')!r} "
                        f"(expected {SPEC_FORMAT})")
    task = fields.get("task")
    if task not in TASKS:
        raise DataError(f"{where}: field 'task' must be one of {', '.join(TASKS)}, got {task!r}")
    source = fields.get("source")
    if not isinstance(source, str) or ":" not in source:
        raise DataError(f"{where}: field 'source' must be a data spec such as "
                        f"'sensor:basicmotions', got {source!r}")
    for key in ("path", "options", "split", "padding"):
        if key in fields and not isinstance(fields[key], str):
            raise DataError(f"{where}: field {key!r} must be a string")
    max_length = fields.get("max_length")
    if max_length is not None and (not _is_int(max_length) or max_length < 1):
        raise DataError(f"{where}: field 'max_length' must be a positive integer, "
                        f"got {max_length!r}")
    stride = fields.get("stride")
    if stride is not None and (not _is_int(stride) or stride < 1):
        raise DataError(f"{where}: field 'stride' must be a positive integer, got {stride!r}")
    if stride is not None and task != "classification":
        raise DataError(f"{where}: field 'stride' applies to sequences, not to text")
    mode = fields.get("stride_mode", "sample")
    if mode not in STRIDE_MODES:
        raise DataError(f"{where}: field 'stride_mode' must be one of {', '.join(STRIDE_MODES)}, "
                        f"got {mode!r}")
    deltas = fields.get("deltas", False)
    if not isinstance(deltas, bool):
        raise DataError(f"{where}: field 'deltas' must be true or false, got {deltas!r}")
    if deltas and task != "classification":
        raise DataError(f"{where}: field 'deltas' applies to sequences, not to text")
    files = fields.get("files", {})
    if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise DataError(f"{where}: field 'files' must map file names to SHA-256 strings")
    if task == "language_model":
        _check_text(fields, where)
    else:
        _check_classification(fields, where)
    return DataSpec(task, source, fields, where)


def _check_text(fields: dict, where: str) -> None:
    vocab = fields.get("vocab")
    if not isinstance(vocab, list) or not vocab or not all(
            isinstance(c, str) and len(c) == 1 for c in vocab):
        raise DataError(f"{where}: field 'vocab' must be a non-empty list of single characters")
    if len(set(vocab)) != len(vocab):
        raise DataError(f"{where}: field 'vocab' lists a character twice")
    max_chars = fields.get("max_chars")
    if max_chars is not None and (not _is_int(max_chars) or max_chars < 100):
        raise DataError(f"{where}: field 'max_chars' must be an integer >= 100, got {max_chars!r}")


def _check_classification(fields: dict, where: str) -> None:
    classes = fields.get("classes")
    if not isinstance(classes, list) or len(classes) < 2 or not all(
            isinstance(c, str) for c in classes):
        raise DataError(f"{where}: field 'classes' must be a list of at least 2 class names")
    if len(set(classes)) != len(classes):
        raise DataError(f"{where}: field 'classes' names a class twice")
    inp = fields.get("input")
    if not isinstance(inp, dict):
        raise DataError(f"{where}: field 'input' (channels, timesteps, normalization) missing")
    for key in ("channels", "timesteps"):
        if not _is_int(inp.get(key)) or inp[key] < 1:
            raise DataError(f"{where}: field 'input.{key}' must be a positive integer, "
                            f"got {inp.get(key)!r}")
    norm = inp.get("normalization")
    if not isinstance(norm, dict):
        raise DataError(f"{where}: field 'input.normalization' (mean, std) missing")
    channels = inp["channels"]
    for key in ("mean", "std"):
        values = norm.get(key)
        if not isinstance(values, list) or len(values) != channels:
            raise DataError(f"{where}: field 'input.normalization.{key}' must be a list of "
                            f"{channels} numbers (one per channel)")
        for c, v in enumerate(values):
            if not _is_number(v) or not math.isfinite(v):
                raise DataError(f"{where}: input.normalization.{key} of channel {c} is {v!r}, "
                                "not a finite number")
            if key == "std" and v <= 0:
                raise DataError(f"{where}: input.normalization.std of channel {c} is {v!r}; "
                                "it must be positive")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def load_run_data(run_dir: Path | str) -> RunData:
    """Re-load the data a run was trained on, from its ``data_spec.json``."""
    path = rundir.require(run_dir, rundir.DATA_SPEC)
    spec = read_spec(path)
    data: RunData | RawClassification = load_raw(
        spec.kind, spec.name, max_chars=spec.fields.get("max_chars"),
        max_length=spec.fields.get("max_length"))
    if data.task != spec.task:
        raise DataError(f"{path}: task {spec.task} but {spec.source} is {data.task} data")
    data = dataclasses.replace(data, source=spec.source)
    files = data.info.get("files", {})
    for fname, digest in spec.files.items():
        if files.get(fname) != digest:
            raise DataError(f"{fname} changed since training (SHA-256 differs from {path})")
    if isinstance(data, TextData):
        if data.vocab != spec.vocab:
            raise DataError(f"{spec.source}: the text's characters differ from the vocabulary "
                            f"in {path}")
        return data
    # as the model read it (a spec from before stride_mode existed: every k-th sample)
    if spec.fields.get("deltas"):
        data = data.with_deltas(spec.fields.get("deltas_rule"))
    data = with_stride(data, spec.fields.get("stride", 1), spec.fields.get("stride_mode", "sample"))
    if spec.classes != data.classes:
        raise DataError(f"{spec.source}: classes {data.classes} differ from {path}")
    if len(spec.mean) != data.x_train.shape[2]:
        raise DataError(f"{spec.source}: the data has {data.x_train.shape[2]} channels, "
                        f"{path} normalizes {len(spec.mean)}")
    return data.normalized(spec.mean, spec.std)
