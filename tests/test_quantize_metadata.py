"""The metadata elman stores in a .tflite: head placement, head activation, trained window."""

import json

import numpy as np
import pytest
from elman.quantize.metadata import METADATA_NAME, StepMetadata

from elman.errors import ModelError


def _doc(**fields) -> dict[str, bytes]:
    doc = {"format_version": 1, "task": "classification", "labels": ["a", "b"],
           "norm_mean": [0.0], "norm_std": [1.0], "embedding": None, **fields}
    return {METADATA_NAME: json.dumps(doc).encode()}


@pytest.mark.parametrize("fields", [
    dict(head_steps="every", head_activation="softmax", window_steps=0),
    dict(head_steps="last", head_activation="linear", window_steps=100),
    dict(head_steps="last", head_activation="linear", window_steps=38, input_stride=4,
         stride_mode="mean"),
    dict(head_steps="last", head_activation="linear", window_steps=19, input_stride=8,
         stride_mode="stack", input_deltas=True),
])
def test_head_fields_round_trip(fields):
    meta = StepMetadata(task="classification", labels=("a", "b"),
                        norm_mean=np.zeros(3), norm_std=np.ones(3), **fields)
    again = StepMetadata.from_entries(meta.to_entries())
    for key, value in fields.items():
        assert getattr(again, key) == value
    stored = json.loads(meta.to_entries()[METADATA_NAME])
    assert {k: stored[k] for k in fields} == fields


@pytest.mark.parametrize("task, steps", [("classification", "last"),
                                         ("language_model", "every")])
def test_files_without_the_head_fields_mean_the_old_shapes(task, steps):
    entries = _doc(task=task)
    if task == "language_model":
        entries = _doc(task=task, norm_mean=None, norm_std=None)
    meta = StepMetadata.from_entries(entries)
    assert (meta.head_steps, meta.head_activation, meta.window_steps) == (steps, "linear", 0)
    assert (meta.input_stride, meta.stride_mode) == (1, "sample")  # files before the stride
    assert meta.input_deltas is False  # files before --deltas
    # without deltas the field is not written: such files keep the bytes they had
    assert "input_deltas" not in json.loads(meta.to_entries()[METADATA_NAME])
    assert StepMetadata(task=task).head_steps == steps


@pytest.mark.parametrize("fields, message", [
    (dict(head_steps="first"), "head_steps must be one of"),
    (dict(head_activation="relu"), "head_activation must be one of"),
    (dict(window_steps=-1), "window_steps must be an integer >= 0"),
    (dict(window_steps=2.5), "window_steps must be an integer >= 0"),
    (dict(input_stride=0), "input_stride must be an integer >= 1"),
    (dict(input_stride=True), "input_stride must be an integer >= 1"),
    (dict(stride_mode="max"), "stride_mode must be one of"),
    (dict(input_deltas=1), "input_deltas must be true or false"),
])
def test_bad_head_fields_are_refused(fields, message):
    with pytest.raises(ModelError, match=message):
        StepMetadata.from_entries(_doc(**fields), "m.tflite")
    with pytest.raises(ValueError, match=message):
        StepMetadata(task="classification", **fields).to_entries()
