"""What elman stores beside the graph in a ``.tflite`` file's metadata.

A TFLite ``Model`` has a list of metadata entries (a name and a buffer) that
interpreters ignore. elman writes two:

``elman``
    UTF-8 JSON, keys sorted::

        {"format_version": 1,
         "task": "classification" | "language_model",
         "labels": [...],                 # class names, or the vocabulary (one string per token)
         "norm_mean": [...] | null,       # float32 per input channel (sensor models)
         "norm_std": [...] | null,
         "embedding": {"entry": "elman.embedding", "shape": [V, D], "dtype": "int8"} | null,
         "head_steps": "last" | "every",  # the head answers at the last step, or at every step
         "head_activation": "linear" | "softmax",  # y is always logits; softmax: the trained
                                                   # model applied softmax to them
         "window_steps": 0,               # a classifier's trained window length; 0: streams
         "input_stride": 1,               # one step per k samples of the recording (absent: 1)
         "stride_mode": "sample"}         # with k > 1: "mean" of the k samples | "sample": the
                                          # first of them (absent: "sample") | "stack": the k
                                          # samples side by side (the input is k x channels)
         "input_deltas": true}            # only when set: each raw sample's channels, then
                                          # their first differences (absent: false)

    Files written before the three head fields existed mean ``last``/``linear``
    for classifiers and ``every``/``linear`` for language models, window 0
    (:func:`default_head_steps`).

``elman.embedding`` (text models only)
    The int8 embedding table, ``V * D`` bytes, row-major, quantized with the
    step model's ``x`` input parameters (``QuantParams.quantize``: round half
    away from zero, saturate), so that row ``t`` is exactly the int8 ``x_t`` of
    token ``t``.

Reading uses only the ``tflite`` package; writing (:func:`add_metadata`) uses
TensorFlow's flatbuffer object API and runs in the converter's child process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from elman.quantize.ir import TASKS

from elman.errors import ModelError

METADATA_NAME = "elman"
EMBEDDING_METADATA_NAME = "elman.embedding"
METADATA_FORMAT_VERSION = 1
HEAD_STEPS = ("last", "every")
HEAD_ACTIVATIONS = ("linear", "softmax")
STRIDE_MODES = ("mean", "sample", "stack")  # as elman.data.sequences.STRIDE_MODES


def head_problems(head_steps: object, head_activation: object) -> list[str]:
    """What is wrong with a head's placement and activation (empty when they are valid)."""
    out = []
    if head_steps not in HEAD_STEPS:
        out.append(f"head_steps must be one of {HEAD_STEPS}, got {head_steps!r}")
    if head_activation not in HEAD_ACTIVATIONS:
        out.append(f"head_activation must be one of {HEAD_ACTIVATIONS}, "
                   f"got {head_activation!r}")
    return out


def default_head_steps(task: str) -> str:
    """Where the head answers when a file does not say: classifiers at the last step,
    language models at every step."""
    return "every" if task == "language_model" else "last"


@dataclass(frozen=True, eq=False)
class StepMetadata:
    task: str
    labels: tuple[str, ...] = ()
    norm_mean: np.ndarray | None = None
    norm_std: np.ndarray | None = None
    embedding: np.ndarray | None = None  # int8 (vocab, input_dim)
    head_steps: str | None = None  # "last" | "every"; None: the task's default
    head_activation: str = "linear"  # "linear" | "softmax" (y holds logits either way)
    window_steps: int = 0  # the window a classifier was trained on; 0: the model streams
    input_stride: int = 1  # one step per input_stride samples of the recording
    stride_mode: str = "sample"  # with a stride: "mean" of its samples | "sample": the first
    input_deltas: bool = False  # each raw sample's channels and their first differences

    def __post_init__(self) -> None:
        if self.task in TASKS and self.head_steps is None:
            object.__setattr__(self, "head_steps", default_head_steps(self.task))

    def problems(self) -> list[str]:
        """What is wrong with these fields (empty when they are consistent)."""
        out = []
        if self.task not in TASKS:
            out.append(f"task must be one of {TASKS}, got {self.task!r}")
        out += head_problems(self.head_steps, self.head_activation)
        if (isinstance(self.window_steps, bool) or not isinstance(self.window_steps, int)
                or self.window_steps < 0):
            out.append(f"window_steps must be an integer >= 0, got {self.window_steps!r}")
        if (isinstance(self.input_stride, bool) or not isinstance(self.input_stride, int)
                or self.input_stride < 1):
            out.append(f"input_stride must be an integer >= 1, got {self.input_stride!r}")
        if self.stride_mode not in STRIDE_MODES:
            out.append(f"stride_mode must be one of {STRIDE_MODES}, got {self.stride_mode!r}")
        if not isinstance(self.input_deltas, bool):
            out.append(f"input_deltas must be true or false, got {self.input_deltas!r}")
        return out

    def to_entries(self) -> dict[str, bytes]:
        """Metadata entries (name -> bytes) for this model."""
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))
        doc = {
            "format_version": METADATA_FORMAT_VERSION,
            "task": self.task,
            "labels": list(self.labels),
            "norm_mean": _floats(self.norm_mean),
            "norm_std": _floats(self.norm_std),
            "embedding": None,
            "head_steps": self.head_steps,
            "head_activation": self.head_activation,
            "window_steps": int(self.window_steps),
            "input_stride": int(self.input_stride),
            "stride_mode": self.stride_mode,
        }
        if self.input_deltas:  # absent otherwise: files without deltas keep their bytes
            doc["input_deltas"] = True
        entries = {}
        if self.embedding is not None:
            emb = np.asarray(self.embedding)
            if emb.dtype not in (np.int8, np.int16) or emb.ndim != 2:
                raise ValueError("the embedding table must be a 2-D int8 (int16) array")
            doc["embedding"] = {"entry": EMBEDDING_METADATA_NAME, "shape": list(emb.shape),
                                "dtype": emb.dtype.name}
            entries[EMBEDDING_METADATA_NAME] = np.ascontiguousarray(
                emb, dtype=emb.dtype.newbyteorder("<")).tobytes()
        entries[METADATA_NAME] = json.dumps(doc, sort_keys=True).encode("utf-8")
        return entries

    @classmethod
    def from_entries(cls, entries: dict[str, bytes], what: str = "the model") -> StepMetadata:
        raw = entries.get(METADATA_NAME)
        if raw is None:
            raise ModelError(
                f"{what} has no '{METADATA_NAME}' metadata entry, so it was not written by "
                "`elman quantize` (task, labels and normalization are missing)"
            )
        try:
            doc = json.loads(raw.decode("utf-8"))
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            raise ModelError(f"{what}: the '{METADATA_NAME}' metadata is not valid JSON: {exc}"
                             ) from None
        version = doc.get("format_version")
        if version != METADATA_FORMAT_VERSION:
            raise ModelError(f"{what}: elman metadata format {version!r} is not supported "
                             f"(this elman reads format {METADATA_FORMAT_VERSION})")
        task = doc.get("task")
        if task not in TASKS:
            raise ModelError(f"{what}: metadata task {task!r} is not one of {TASKS}")
        labels = doc.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(s, str) for s in labels):
            raise ModelError(f"{what}: metadata labels must be a list of strings")
        embedding = None
        emb_doc = doc.get("embedding")
        if emb_doc is not None:
            name = emb_doc.get("entry", EMBEDDING_METADATA_NAME)
            shape = emb_doc.get("shape")
            blob = entries.get(name)
            if blob is None:
                raise ModelError(f"{what}: the embedding table entry {name!r} is missing")
            dtype = {"int8": np.int8, "int16": np.int16}.get(emb_doc.get("dtype"))
            if (dtype is None or not isinstance(shape, list) or len(shape) != 2
                    or len(blob) != int(shape[0]) * int(shape[1]) * np.dtype(dtype).itemsize):
                raise ModelError(f"{what}: the embedding table entry has {len(blob)} bytes, "
                                 f"which does not match its {emb_doc.get('dtype')} shape "
                                 f"{shape}")
            embedding = np.frombuffer(blob, np.dtype(dtype).newbyteorder("<")).astype(
                dtype).reshape(int(shape[0]), int(shape[1]))
        meta = cls(
            task=task, labels=tuple(labels),
            norm_mean=_array_or_none(doc.get("norm_mean"), what, "norm_mean"),
            norm_std=_array_or_none(doc.get("norm_std"), what, "norm_std"),
            embedding=embedding,
            head_steps=doc.get("head_steps", default_head_steps(task)),
            head_activation=doc.get("head_activation", "linear"),
            window_steps=doc.get("window_steps", 0),
            input_stride=doc.get("input_stride", 1),
            stride_mode=doc.get("stride_mode", "sample"),
            input_deltas=doc.get("input_deltas", False),
        )
        problems = meta.problems()
        if problems:
            raise ModelError(f"{what}: elman metadata: " + "; ".join(problems))
        return meta


def _floats(v: np.ndarray | None) -> list[float] | None:
    if v is None:
        return None
    return [float(x) for x in np.asarray(v, dtype=np.float32)]


def _array_or_none(v: object, what: str, key: str) -> np.ndarray | None:
    if v is None:
        return None
    try:
        return np.array(v, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise ModelError(f"{what}: metadata {key} is not a list of numbers") from None


def add_metadata(model: bytes, entries: dict[str, bytes]) -> bytes:
    """Return ``model`` with ``entries`` added (replacing entries of the same name).

    Uses TensorFlow's flatbuffer object API; imports TF, so the quantize stage
    calls it in the converter's child process.
    """
    import numpy as np
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    obj = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    obj.metadata = [m for m in (obj.metadata or [])
                    if m.name.decode("utf-8") not in entries]
    for name, blob in sorted(entries.items()):
        buf = schema.BufferT()
        buf.data = np.frombuffer(blob, dtype=np.uint8).copy()
        obj.buffers.append(buf)
        meta = schema.MetadataT()
        meta.name = name.encode("utf-8")
        meta.buffer = len(obj.buffers) - 1
        obj.metadata.append(meta)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(obj))
