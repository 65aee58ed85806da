"""The TFLite flatbuffer schema, as far as a strict reader of elman's files needs it.

Each table is a tuple of :class:`Field` (the vtable slot, the field's name in
``schema.fbs``, its kind and its default), transcribed from TFLite's
``schema.fbs`` as of TensorFlow 2.21, the converter elman pins
(``tests/test_flatbuffer_verify.py`` checks every slot, width and default against
TensorFlow's generated schema module, and that the older ``tflite`` package the
IR reader uses knows no field this schema lacks). Kinds:

- a ``struct`` format letter for a scalar (``b`` int8, ``B`` uint8, ``?`` bool,
  ``i`` int32, ``I`` uint32, ``q`` int64, ``Q`` uint64, ``f`` float32, ...);
- ``str`` for a string;
- ``[x]`` for a vector of the scalar ``x``, ``[str]`` for a vector of strings;
- a table name, ``[Table]`` for a vector of tables;
- ``union Name`` for a union value, whose type is the field just before it
  (``Name`` is a key of :data:`UNIONS`).

Union members this schema does not describe (the options of operators elman
never writes) are read as opaque tables: their vtable and size are checked,
their fields are not.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import tflite


@dataclass(frozen=True)
class Field:
    slot: int
    name: str
    kind: str
    default: int | float | bool = 0

    @property
    def is_scalar(self) -> bool:
        return len(self.kind) == 1

    @property
    def scalar_size(self) -> int:
        return struct.calcsize("<" + self.kind)


def _fields(*specs: tuple) -> tuple[Field, ...]:
    return tuple(Field(*spec) for spec in specs)


TABLES: dict[str, tuple[Field, ...]] = {
    "Model": _fields(
        (0, "version", "I"), (1, "operator_codes", "[OperatorCode]"),
        (2, "subgraphs", "[SubGraph]"), (3, "description", "str"), (4, "buffers", "[Buffer]"),
        (5, "metadata_buffer", "[i]"), (6, "metadata", "[Metadata]"),
        (7, "signature_defs", "[SignatureDef]"),
        (8, "external_buffer_groups", "[ExternalBufferGroup]"),
        (9, "external_buffers", "[ExternalBuffer]")),
    "OperatorCode": _fields(
        (0, "deprecated_builtin_code", "b"), (1, "custom_code", "str"), (2, "version", "i", 1),
        (3, "builtin_code", "i")),
    "SubGraph": _fields(
        (0, "tensors", "[Tensor]"), (1, "inputs", "[i]"), (2, "outputs", "[i]"),
        (3, "operators", "[Operator]"), (4, "name", "str"), (5, "debug_metadata_index", "i", -1)),
    "Tensor": _fields(
        (0, "shape", "[i]"), (1, "type", "b"), (2, "buffer", "I"), (3, "name", "str"),
        (4, "quantization", "QuantizationParameters"), (5, "is_variable", "?", False),
        (6, "sparsity", "SparsityParameters"), (7, "shape_signature", "[i]"),
        (8, "has_rank", "?", False), (9, "variant_tensors", "[VariantSubType]"),
        (10, "external_buffer", "I")),
    "VariantSubType": _fields((0, "shape", "[i]"), (1, "type", "b"), (2, "has_rank", "?", False)),
    "QuantizationParameters": _fields(
        (0, "min", "[f]"), (1, "max", "[f]"), (2, "scale", "[f]"), (3, "zero_point", "[q]"),
        (4, "details_type", "B"), (5, "details", "union QuantizationDetails"),
        (6, "quantized_dimension", "i")),
    "CustomQuantization": _fields((0, "custom", "[B]")),
    "BlockwiseQuantization": _fields((0, "scales", "i"), (1, "zero_points", "i"),
                                     (2, "block_size", "i")),
    "SparsityParameters": _fields(
        (0, "traversal_order", "[i]"), (1, "block_map", "[i]"),
        (2, "dim_metadata", "[DimensionMetadata]")),
    "DimensionMetadata": _fields(
        (0, "format", "b"), (1, "dense_size", "i"), (2, "array_segments_type", "B"),
        (3, "array_segments", "union SparseIndexVector"), (4, "array_indices_type", "B"),
        (5, "array_indices", "union SparseIndexVector")),
    "Int32Vector": _fields((0, "values", "[i]")),
    "Uint16Vector": _fields((0, "values", "[H]")),
    "Uint8Vector": _fields((0, "values", "[B]")),
    "Buffer": _fields((0, "data", "[B]"), (1, "offset", "Q"), (2, "size", "Q")),
    "Metadata": _fields((0, "name", "str"), (1, "buffer", "I")),
    "ExternalBufferGroup": _fields((0, "name", "str")),
    "ExternalBuffer": _fields((0, "id", "I"), (1, "group", "I"), (2, "offset", "Q"),
                              (3, "length", "Q"), (4, "packing", "str")),
    "SignatureDef": _fields(
        (0, "inputs", "[TensorMap]"), (1, "outputs", "[TensorMap]"), (2, "signature_key", "str"),
        (4, "subgraph_index", "I")),  # slot 3 (method_name) is deprecated
    "TensorMap": _fields((0, "name", "str"), (1, "tensor_index", "I")),
    "Operator": _fields(
        (0, "opcode_index", "I"), (1, "inputs", "[i]"), (2, "outputs", "[i]"),
        (3, "builtin_options_type", "B"), (4, "builtin_options", "union BuiltinOptions"),
        (5, "custom_options", "[B]"), (6, "custom_options_format", "b"),
        (7, "mutating_variable_inputs", "[?]"), (8, "intermediates", "[i]"),
        (9, "large_custom_options_offset", "Q"), (10, "large_custom_options_size", "Q"),
        (11, "builtin_options_2_type", "B"), (12, "builtin_options_2", "union BuiltinOptions2"),
        (13, "debug_metadata_index", "i", -1)),
    "FullyConnectedOptions": _fields(
        (0, "fused_activation_function", "b"), (1, "weights_format", "b"),
        (2, "keep_num_dims", "?", False), (3, "asymmetric_quantize_inputs", "?", False),
        (4, "quantized_bias_type", "b")),
    "AddOptions": _fields((0, "fused_activation_function", "b"),
                          (1, "pot_scale_int16", "?", True)),
}

# union name -> {type code: table name}; codes not listed are opaque tables
UNIONS: dict[str, dict[int, str]] = {
    "BuiltinOptions": {tflite.BuiltinOptions.FullyConnectedOptions: "FullyConnectedOptions",
                       tflite.BuiltinOptions.AddOptions: "AddOptions"},
    "BuiltinOptions2": {},
    "QuantizationDetails": {tflite.QuantizationDetails.CustomQuantization: "CustomQuantization",
                            2: "BlockwiseQuantization"},  # newer than the tflite package
    "SparseIndexVector": {tflite.SparseIndexVector.Int32Vector: "Int32Vector",
                          tflite.SparseIndexVector.Uint16Vector: "Uint16Vector",
                          tflite.SparseIndexVector.Uint8Vector: "Uint8Vector"},
}

# bytes per element of each tensor type whose constant data has a fixed size
TENSOR_TYPE_SIZES: dict[int, int] = {
    tflite.TensorType.FLOAT32: 4, tflite.TensorType.FLOAT16: 2, tflite.TensorType.INT32: 4,
    tflite.TensorType.UINT8: 1, tflite.TensorType.INT64: 8, tflite.TensorType.BOOL: 1,
    tflite.TensorType.INT16: 2, tflite.TensorType.COMPLEX64: 8, tflite.TensorType.INT8: 1,
    tflite.TensorType.FLOAT64: 8, tflite.TensorType.COMPLEX128: 16,
    tflite.TensorType.UINT64: 8, tflite.TensorType.UINT32: 4, tflite.TensorType.UINT16: 2,
    tflite.TensorType.BFLOAT16: 2,
}
TENSOR_TYPES: frozenset[int] = frozenset(
    v for k, v in vars(tflite.TensorType).items() if not k.startswith("_"))

SCHEMA_VERSION = 3  # Model.version every TFLite interpreter requires
