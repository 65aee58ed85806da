"""Validate a ``.tflite`` file as strictly as LiteRT does, before anything else reads it.

Two layers, each the counterpart of what LiteRT runs before it builds an
interpreter:

1. :func:`decode_tflite` walks the flatbuffer like ``flatbuffers::Verifier``
   (``FlatBufferModel::VerifyAndBuildFromBuffer``): every offset lands inside
   the file and is aligned, every vtable has a sane size and lies inside the
   file, every field lies inside its table, vectors and strings fit, strings end
   in NUL, tables nest at most 64 deep; and, stricter than the verifier, no
   table has a field the schema does not define. It returns the model as plain
   values (:class:`Table`), so what comes after never touches raw offsets.
2. :func:`model_problems` runs the checks of LiteRT's ``InterpreterBuilder``
   and of the kernels' ``Prepare`` for the operators elman writes: schema
   version 3, tensor / buffer / opcode indices in range, constant data exactly
   the size its shape and type need, quantization parameters consistent,
   FULLY_CONNECTED / ADD / TANH with the inputs and outputs they require.

:func:`validate_tflite` does both and raises one :class:`~elman.errors.ModelError`
(one line) naming the first problem.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import tflite
from elman.quantize.tflite_schema import (
    SCHEMA_VERSION,
    TABLES,
    TENSOR_TYPE_SIZES,
    TENSOR_TYPES,
    UNIONS,
    Field,
)

from elman.errors import ModelError

FILE_IDENTIFIER = b"TFL3"
MAX_DEPTH = 64  # flatbuffers::Verifier's defaults, as LiteRT uses them
MAX_TABLES = 1_000_000
MAX_FILE_BYTES = 2**31 - 1


class Table(dict):
    """One flatbuffer table's fields by schema name: every field of its schema, absent
    scalars holding their default and absent strings, vectors and tables ``None``."""

    def __init__(self, schema: str, fields: dict[str, Any]) -> None:
        super().__init__(fields)
        self.schema = schema


@dataclass(frozen=True)
class OpaqueTable:
    """A union member this schema does not describe (the options of an operator elman
    never writes): its vtable and extent were checked, its fields are not read."""

    type_code: int
    raw: bytes  # the table's inline bytes


class CorruptFlatbuffer(Exception):
    """The bytes are not a well-formed flatbuffer (the message says where)."""


class _Decoder:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.tables = 0

    def need(self, pos: int, length: int, align: int, what: str) -> None:
        if pos < 0 or pos + length > self.size:
            raise CorruptFlatbuffer(f"{what} at byte {pos} runs past the end of the file")
        if pos % align:
            raise CorruptFlatbuffer(f"{what} at byte {pos} is not {align}-byte aligned")

    def scalar(self, fmt: str, pos: int, what: str) -> Any:
        size = struct.calcsize("<" + fmt)
        self.need(pos, size, size, what)
        return struct.unpack_from("<" + fmt, self.data, pos)[0]

    def follow(self, pos: int, what: str) -> int:
        """The position a uoffset at ``pos`` points to."""
        offset = self.scalar("I", pos, what)
        if offset == 0 or offset >= 2**31:
            raise CorruptFlatbuffer(f"{what} at byte {pos} has an invalid offset {offset}")
        self.need(pos + offset, 1, 1, what)
        return pos + offset

    def vector_length(self, pos: int, element_size: int, what: str) -> int:
        n = self.scalar("I", pos, what)
        if n >= MAX_FILE_BYTES // element_size:
            raise CorruptFlatbuffer(f"{what} at byte {pos} claims {n} elements")
        self.need(pos + 4, n * element_size, 1, what)
        return n

    def string(self, pos: int, what: str) -> bytes:
        n = self.vector_length(pos, 1, what)
        self.need(pos + 4 + n, 1, 1, what)
        if self.data[pos + 4 + n] != 0:
            raise CorruptFlatbuffer(f"{what} at byte {pos} is not NUL-terminated")
        return self.data[pos + 4:pos + 4 + n]

    def table(self, pos: int, name: str | None, depth: int, type_code: int = 0
              ) -> Table | OpaqueTable:
        what = f"the {name or 'options'} table"
        if depth > MAX_DEPTH:
            raise CorruptFlatbuffer(f"tables nest more than {MAX_DEPTH} deep")
        self.tables += 1
        if self.tables > MAX_TABLES:
            raise CorruptFlatbuffer(f"more than {MAX_TABLES} tables")
        vtable = pos - self.scalar("i", pos, what)
        vt_what = f"the vtable of {what} (byte {pos})"
        vsize = self.scalar("H", vtable, vt_what)
        tsize = self.scalar("H", vtable + 2, vt_what)
        if vsize < 4 or vsize % 2:
            raise CorruptFlatbuffer(f"{vt_what} has an invalid size {vsize}")
        self.need(vtable, vsize, 2, vt_what)
        if tsize < 4:
            raise CorruptFlatbuffer(f"{what} at byte {pos} has an invalid size {tsize}")
        self.need(pos, tsize, 1, what)
        offsets = struct.unpack_from(f"<{(vsize - 4) // 2}H", self.data, vtable + 4)
        for slot, off in enumerate(offsets):
            if off and not 4 <= off < tsize:
                raise CorruptFlatbuffer(f"field {slot} of {what} at byte {pos} lies outside "
                                        "its table")
        if name is None:
            return OpaqueTable(type_code, self.data[pos:pos + tsize])
        fields = TABLES[name]
        known = {f.slot for f in fields}
        unknown = [slot for slot, off in enumerate(offsets) if off and slot not in known]
        if unknown:
            raise CorruptFlatbuffer(f"{what} at byte {pos} has a field (slot {unknown[0]}) "
                                    "the TFLite schema does not define")
        values: dict[str, Any] = {}
        for f in fields:
            off = offsets[f.slot] if f.slot < len(offsets) else 0
            if off and f.is_scalar and off + f.scalar_size > tsize:
                raise CorruptFlatbuffer(f"field {f.name} of {what} at byte {pos} lies "
                                        "outside its table")
            values[f.name] = self.field(pos + off if off else None, f, values, depth)
        return Table(name, values)

    def field(self, pos: int | None, f: Field, siblings: dict[str, Any], depth: int) -> Any:
        what = f"field {f.name}"
        if f.is_scalar:
            if pos is None:
                return f.default
            value = self.scalar(f.kind, pos, what)
            return bool(value) if f.kind == "?" else value
        if pos is None:
            return None
        if f.kind.startswith("union "):
            type_code = siblings[f.name + "_type"]
            if type_code == 0:
                return None
            target = self.follow(pos, what)
            return self.table(target, UNIONS[f.kind[6:]].get(type_code), depth + 1, type_code)
        target = self.follow(pos, what)
        if f.kind == "str":
            return self.string(target, what)
        if f.kind in TABLES:
            return self.table(target, f.kind, depth + 1)
        element = f.kind[1:-1]
        if element in TABLES:
            n = self.vector_length(target, 4, what)
            return [self.table(self.follow(target + 4 + 4 * i, what), element, depth + 1)
                    for i in range(n)]
        size = struct.calcsize("<" + element)
        n = self.vector_length(target, size, what)
        dtype = np.dtype(np.uint8 if element == "?" else "<" + element)
        values = np.frombuffer(self.data, dtype=dtype, count=n, offset=target + 4)
        return values != 0 if element == "?" else values


def decode_tflite(data: bytes) -> Table:
    """The model's tables as values, verified like ``flatbuffers::Verifier`` does
    (raises :class:`CorruptFlatbuffer`)."""
    data = bytes(data)
    if len(data) < 8:
        raise CorruptFlatbuffer(f"only {len(data)} bytes")
    if len(data) > MAX_FILE_BYTES:
        raise CorruptFlatbuffer("larger than 2 GiB, the most a flatbuffer can address")
    if data[4:8] != FILE_IDENTIFIER:
        raise CorruptFlatbuffer(f"its identifier is {data[4:8]!r}, not {FILE_IDENTIFIER!r}")
    decoder = _Decoder(data)
    model = decoder.table(decoder.follow(0, "the root offset"), "Model", 1)
    assert isinstance(model, Table)
    return model


# operator: (allowed input counts, output count, allowed builtin options types)
_OPERATOR_ARITY = {
    tflite.BuiltinOperator.FULLY_CONNECTED: ((2, 3), 1,
                                             tflite.BuiltinOptions.FullyConnectedOptions),
    tflite.BuiltinOperator.ADD: ((2,), 1, tflite.BuiltinOptions.AddOptions),
    tflite.BuiltinOperator.TANH: ((1,), 1, 0),
}
_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


def builtin_code(code: Table) -> int:
    """The operator an OperatorCode names (``max`` of the old and new fields, as TFLite)."""
    return max(int(code["builtin_code"]), int(code["deprecated_builtin_code"]))


def buffer_contents(model: Table, index: int, data: bytes) -> bytes | None:
    """The bytes buffer ``index`` holds, inline or at its offset in the file (LiteRT's
    rule); ``None`` for buffer 0, an out-of-range index, or a buffer without data."""
    buffers = model["buffers"] or []
    if index <= 0 or index >= len(buffers):
        return None
    buf = buffers[index]
    if buf["data"] is not None:
        return buf["data"].tobytes()
    if buf["offset"] > 1:
        return data[buf["offset"]:buf["offset"] + buf["size"]]
    return None


def model_problems(model: Table, data: bytes) -> list[str]:
    """What LiteRT's InterpreterBuilder (and the Prepare of FULLY_CONNECTED, ADD and
    TANH) would refuse in a verified model; empty when it is fine."""
    problems: list[str] = []
    if model["version"] != SCHEMA_VERSION:
        problems.append(f"it is schema version {model['version']}, interpreters read "
                        f"version {SCHEMA_VERSION}")
    buffers = model["buffers"]
    if buffers is None:
        problems.append("it has no buffer list")
    buffers = buffers or []
    for i, buf in enumerate(buffers):
        if buf["offset"] > 1 and buf["data"] is not None:
            problems.append(f"buffer {i} has both inline data and an offset into the file")
        elif buf["offset"] > 1 and buf["offset"] + buf["size"] > len(data):
            problems.append(f"buffer {i} points past the end of the file")
    for i, meta in enumerate(model["metadata"] or []):
        if meta["name"] is None or meta["buffer"] >= len(buffers):
            problems.append(f"metadata entry {i} has no name or refers to buffer "
                            f"{meta['buffer']} of {len(buffers)}")
    subgraphs = model["subgraphs"] or []
    if not subgraphs:
        problems.append("it has no subgraph")
    for s, sg in enumerate(subgraphs):
        problems += _subgraph_problems(model, sg, f"subgraph {s}: " if s else "", data)
    for i, sig in enumerate(model["signature_defs"] or []):
        if sig["signature_key"] is None or sig["inputs"] is None or sig["outputs"] is None:
            problems.append(f"signature {i} lacks its key, inputs or outputs")
        elif sig["subgraph_index"] >= len(subgraphs):
            problems.append(f"signature {i} refers to subgraph {sig['subgraph_index']}")
        else:
            n = len(subgraphs[sig["subgraph_index"]]["tensors"] or [])
            if any(m["tensor_index"] >= n for m in sig["inputs"] + sig["outputs"]):
                problems.append(f"signature {i} refers to a tensor out of range")
    return problems


def _subgraph_problems(model: Table, sg: Table, where: str, data: bytes) -> list[str]:
    problems: list[str] = []
    n_buffers = len(model["buffers"] or [])
    tensors = sg["tensors"] or []
    for i, t in enumerate(tensors):
        problems += [where + p for p in _tensor_problems(model, i, t, n_buffers, data)]
    n = len(tensors)

    def out_of_range(indices: Any, optional: bool) -> list[int]:
        return [int(v) for v in (indices if indices is not None else ())
                if not (0 <= v < n or (optional and v == -1))]

    for name in ("inputs", "outputs"):
        bad = out_of_range(sg[name], optional=False)
        if bad:
            problems.append(f"{where}its {name} refer to tensor {bad[0]} of {n}")
    codes = model["operator_codes"] or []
    for k, op in enumerate(sg["operators"] or []):
        if op["opcode_index"] >= len(codes):
            problems.append(f"{where}operator {k} has opcode index {op['opcode_index']} of "
                            f"{len(codes)}")
            continue
        code = builtin_code(codes[op["opcode_index"]])
        label = f"{where}operator {k} ({_OP_NAMES.get(code, code)})"
        for name, optional in (("inputs", True), ("outputs", False), ("intermediates", False)):
            bad = out_of_range(op[name], optional)
            if bad:
                problems.append(f"{label} {name} refer to tensor {bad[0]} of {n}")
        n_in = 0 if op["inputs"] is None else len(op["inputs"])
        n_out = 0 if op["outputs"] is None else len(op["outputs"])
        if n_out == 0:
            problems.append(f"{label} has no outputs")
        if code in _OPERATOR_ARITY:
            ins, outs, options = _OPERATOR_ARITY[code]
            if n_in not in ins or n_out != outs:
                problems.append(f"{label} has {n_in} inputs and {n_out} outputs, it takes "
                                f"{' or '.join(map(str, ins))} and gives {outs}")
            if op["builtin_options_type"] not in (0, options):
                problems.append(f"{label} carries options of type {op['builtin_options_type']}")
    return problems


def _tensor_problems(model: Table, i: int, t: Table, n_buffers: int, data: bytes) -> list[str]:
    problems = []
    label = f"tensor {i}"
    if t["type"] not in TENSOR_TYPES:
        problems.append(f"{label} has unknown type {t['type']}")
    shape = [] if t["shape"] is None else [int(d) for d in t["shape"]]
    if any(d < 0 for d in shape):
        problems.append(f"{label} has a negative dimension in shape {shape}")
        return problems
    if t["buffer"] >= n_buffers:
        problems.append(f"{label} refers to buffer {t['buffer']} of {n_buffers}")
        return problems
    q = t["quantization"]
    if q is not None and q["scale"] is not None and len(q["scale"]):
        n_scales = len(q["scale"])
        qdim = q["quantized_dimension"]
        if q["zero_point"] is None or len(q["zero_point"]) != n_scales:
            problems.append(f"{label} has {n_scales} scales but "
                            f"{0 if q['zero_point'] is None else len(q['zero_point'])} zero points")
        elif qdim < 0 or (shape and qdim >= len(shape)):
            problems.append(f"{label} is quantized along dimension {qdim} of {len(shape)}")
        elif n_scales != 1 and shape and n_scales != shape[qdim]:
            problems.append(f"{label} has {n_scales} scales for {shape[qdim]} channels")
    if t["external_buffer"]:
        problems.append(f"{label} takes its data from external buffer {t['external_buffer']}, "
                        "outside the file")
    contents = buffer_contents(model, t["buffer"], data)
    if contents is not None:
        if t["is_variable"]:
            problems.append(f"{label} is a variable with constant data")
        size = TENSOR_TYPE_SIZES.get(t["type"])
        if size is not None and t["sparsity"] is None:
            expected = int(np.prod(shape, dtype=np.int64)) * size
            if len(contents) != expected:
                problems.append(f"{label} holds {len(contents)} bytes of data, its shape "
                                f"{shape} needs {expected}")
    return problems


def validate_tflite(data: bytes, what: str = "the model") -> Table:
    """The verified model (:func:`decode_tflite`), or one ModelError naming the first
    problem LiteRT would refuse it for."""
    if len(data) < 8:
        raise ModelError(f"{what} is not a TFLite model: only {len(data)} bytes")
    if bytes(data[4:8]) != FILE_IDENTIFIER:
        raise ModelError(f"{what} is not a TFLite model: its flatbuffer identifier is "
                         f"{bytes(data[4:8])!r}, expected {FILE_IDENTIFIER!r}")
    try:
        model = decode_tflite(data)
    except CorruptFlatbuffer as exc:
        raise ModelError(f"{what} is a corrupt or truncated TFLite file ({len(data)} bytes): "
                         f"{exc}") from None
    problems = model_problems(model, bytes(data))
    if problems:
        more = (f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
                if len(problems) > 1 else "")
        raise ModelError(f"{what} is not a valid TFLite model: {problems[0]}{more}")
    return model
