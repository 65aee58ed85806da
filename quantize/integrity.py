"""The checksum an elman ``.tflite`` carries of everything read from it.

``elman quantize`` writes, as the metadata entry ``elman.checksum``::

    {"algorithm": "sha256", "canonical_form": 1, "digest": "<64 hex digits>"}

and every reader (:func:`check_integrity`, first thing in
:func:`~elman.quantize.reader.read_ir`) recomputes the digest and refuses the
file, in one line, when it differs: a bit flip that changes a weight, a bias, a
scale or the graph is caught before any stage can certify the damaged model.
(A checksum, not a signature: it catches damage and careless edits, not an
attacker who recomputes it.)

What the digest covers: the canonical form of the model's *values*, not its
bytes, so that a re-serialization (another flatbuffer builder, vtables shared
or not, defaults written or omitted, buffers reordered or deduplicated) keeps
it, and every value the IR or an interpreter reads changes it:

- the schema version, description, operator codes (builtin code, both fields;
  custom code; version), signature defs;
- every subgraph: its name, inputs, outputs, every operator (opcode index,
  inputs, outputs, intermediates, builtin options field by field, custom
  options, ...) and every tensor (name, type, shape, shape signature,
  quantization: scales and zero points as stored, min/max, quantized dimension,
  sparsity, the variable flag) with the *bytes of its constant data* in place
  of its buffer index (inline or at an offset in the file, as LiteRT resolves it);
- every metadata entry (its name and the bytes it holds) except
  ``elman.checksum`` itself.

The canonical form: each table's fields sorted by schema name, fields whose
value is the schema default (or absent) left out, every value tagged with its
type and every length written out (see :func:`canonical_bytes`), so two
different models never share a form. Scalars are the values the schema
defines (a bool is true or false, however it was stored); vectors of numbers
are their little-endian bytes with their element type.

A file without ``elman.checksum`` but with elman's own metadata was written
by an elman from before the checksum (or had it removed): it is refused,
with the command that makes a checked file (``elman quantize RUN_DIR``, a few
seconds, deterministic). Accepting it with a warning would let exactly the
files this check exists for (damaged, edited, stripped) be certified
bit-exact; a demanding user wants the stage to stop. A ``.tflite`` with no
elman metadata at all is left to the reader, which says it was not written by
elman.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import numpy as np
from elman.quantize.flatbuffer_verify import (
    OpaqueTable,
    Table,
    buffer_contents,
    validate_tflite,
)
from elman.quantize.metadata import METADATA_NAME, add_metadata
from elman.quantize.tflite_schema import TABLES

from elman.errors import ModelError

CHECKSUM_NAME = "elman.checksum"
CANONICAL_FORM = 1
ALGORITHM = "sha256"
_DEFAULTS = {name: {f.name: f.default for f in fields if f.is_scalar}
             for name, fields in TABLES.items()}


def logical_model(model: Table, data: bytes) -> Table:
    """``model`` with every buffer reference replaced by the bytes it holds, the buffer
    list itself and the checksum entry left out: what the checksum is computed from."""

    def contents(index: int) -> bytes | None:
        return buffer_contents(model, int(index), data)

    def tensor(t: Table) -> Table:
        out = Table("Tensor", {k: v for k, v in t.items() if k != "buffer"})
        out["data"] = contents(t["buffer"])
        return out

    def operator(op: Table) -> Table:
        out = Table("Operator", {k: v for k, v in op.items()
                                 if not k.startswith("large_custom_options_")})
        offset, size = op["large_custom_options_offset"], op["large_custom_options_size"]
        out["large_custom_options"] = data[offset:offset + size] if offset > 1 else None
        return out

    def subgraph(sg: Table) -> Table:
        out = Table("SubGraph", dict(sg))
        out["tensors"] = [tensor(t) for t in sg["tensors"] or []]
        out["operators"] = [operator(op) for op in sg["operators"] or []]
        return out

    out = Table("Model", {k: v for k, v in model.items() if k != "buffers"})
    out["subgraphs"] = [subgraph(sg) for sg in model["subgraphs"] or []]
    out["metadata"] = [{"name": m["name"], "data": contents(m["buffer"])}
                       for m in model["metadata"] or [] if m["name"] != CHECKSUM_NAME.encode()]
    if model["metadata_buffer"] is not None:
        out["metadata_buffer"] = [contents(i) for i in model["metadata_buffer"]]
    return out


def canonical_bytes(value: Any) -> bytes:
    """The tagged, length-prefixed serialization of a logical model (or any part)."""
    out = bytearray()
    _encode(value, out)
    return bytes(out)


def _length(n: int) -> bytes:
    return struct.pack("<Q", n)


def _encode(value: Any, out: bytearray) -> None:
    if isinstance(value, dict):
        defaults = _DEFAULTS.get(value.schema, {}) if isinstance(value, Table) else {}
        items = sorted((k, v) for k, v in value.items()
                       if v is not None and not (k in defaults and v == defaults[k]))
        out += b"{" + _length(len(items))
        for key, item in items:
            raw = key.encode("utf-8")
            out += b"k" + _length(len(raw)) + raw
            _encode(item, out)
    elif isinstance(value, list):
        out += b"[" + _length(len(value))
        for item in value:
            _encode(item, out)
    elif isinstance(value, bool | np.bool_):
        out += b"?" + (b"\x01" if value else b"\x00")
    elif isinstance(value, int | np.integer):
        out += b"i" + int(value).to_bytes(16, "little", signed=True)
    elif isinstance(value, float | np.floating):
        out += b"d" + struct.pack("<d", float(value))
    elif isinstance(value, bytes | bytearray | memoryview):
        out += b"s" + _length(len(value)) + bytes(value)
    elif isinstance(value, np.ndarray):
        dtype = value.dtype.str.encode("ascii")
        raw = np.ascontiguousarray(value).tobytes()
        out += b"v" + _length(len(dtype)) + dtype + _length(len(raw)) + raw
    elif isinstance(value, OpaqueTable):
        out += b"o" + int(value.type_code).to_bytes(16, "little", signed=True)
        out += _length(len(value.raw)) + value.raw
    else:  # pragma: no cover - every decoded value is one of the above
        raise TypeError(f"cannot encode {type(value).__name__}")


def digest_of(model: Table, data: bytes) -> str:
    """The SHA-256 of the canonical form of a verified model (``data``: its bytes)."""
    return hashlib.sha256(canonical_bytes(logical_model(model, data))).hexdigest()


def checksum_entry(data: bytes) -> dict[str, bytes]:
    """The ``elman.checksum`` metadata entry for ``data`` (name -> bytes)."""
    digest = digest_of(validate_tflite(data, "the model being sealed"), bytes(data))
    doc = {"algorithm": ALGORITHM, "canonical_form": CANONICAL_FORM, "digest": digest}
    return {CHECKSUM_NAME: json.dumps(doc, sort_keys=True).encode("utf-8")}


def seal(data: bytes) -> bytes:
    """``data`` with its checksum added (imports TensorFlow: the quantize child process
    calls it, as the last thing it does to a model)."""
    sealed = add_metadata(bytes(data), checksum_entry(data))
    check_integrity(sealed, "the sealed model")  # the re-serialization kept every value
    return sealed


def check_integrity(data: bytes, what: str = "the model") -> None:
    """Refuse (one :class:`ModelError`) a file that is not a valid TFLite model, whose
    contents differ from its checksum, or that has elman's metadata but no checksum."""
    data = bytes(data)
    model = validate_tflite(data, what)
    names = [m["name"] for m in model["metadata"] or []]
    entries = [m for m in model["metadata"] or [] if m["name"] == CHECKSUM_NAME.encode()]
    if not entries:
        if METADATA_NAME.encode() in names:
            raise ModelError(
                f"{what} carries no integrity checksum ('{CHECKSUM_NAME}' metadata): it was "
                "written by an older elman, or the checksum was removed; rerun "
                "`elman quantize RUN_DIR` to write a checked model")
        return
    if len(entries) > 1:
        raise ModelError(f"{what} has {len(entries)} '{CHECKSUM_NAME}' entries: it was edited")
    stored = _stored_digest(buffer_contents(model, entries[0]["buffer"], data), what)
    actual = digest_of(model, data)
    if stored != actual:
        raise ModelError(
            f"{what} was changed after `elman quantize` wrote it: its contents do not match "
            f"its checksum (stored {stored[:12]}..., contents {actual[:12]}...); the file is "
            "damaged or was edited, rerun `elman quantize RUN_DIR`")


def _stored_digest(raw: bytes | None, what: str) -> str:
    try:
        doc = json.loads((raw or b"").decode("utf-8"))
        algorithm, form, digest = doc["algorithm"], doc["canonical_form"], doc["digest"]
    except (UnicodeDecodeError, ValueError, TypeError, KeyError):
        raise ModelError(f"{what}: its '{CHECKSUM_NAME}' entry is damaged (not the JSON "
                         "`elman quantize` writes); rerun `elman quantize RUN_DIR`") from None
    if algorithm != ALGORITHM or form != CANONICAL_FORM or not isinstance(digest, str):
        raise ModelError(f"{what}: checksum {algorithm!r} of canonical form {form!r} is not "
                         f"the one this elman reads ({ALGORITHM}, form {CANONICAL_FORM}); "
                         "rerun `elman quantize RUN_DIR`")
    return digest
