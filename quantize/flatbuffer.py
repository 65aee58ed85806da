"""A plain-Python view of a ``.tflite`` flatbuffer, read with the ``tflite`` package (no TF).

Flatbuffer accessors read lazily and fail in many ways on damaged bytes
(``struct.error``, ``IndexError``, garbage offsets); :func:`parse_tflite`
walks everything elman needs once, inside one guard, so that a truncated or
corrupt file becomes one :class:`~elman.errors.ModelError` and the rest of the
reader works on ordinary dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tflite
from elman.quantize.flatbuffer_verify import validate_tflite

from elman.errors import ModelError

OP_NAMES: dict[int, str] = {
    v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")
}
TYPE_NAMES: dict[int, str] = {
    v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")
}
ACTIVATION_NAMES: dict[int, str] = {
    v: k for k, v in vars(tflite.ActivationFunctionType).items() if not k.startswith("_")
}
_NUMPY_TYPES = {
    tflite.TensorType.INT8: np.int8,
    tflite.TensorType.UINT8: np.uint8,
    tflite.TensorType.INT16: np.int16,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.INT64: np.int64,
    tflite.TensorType.FLOAT32: np.float32,
}


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    type: int  # tflite.TensorType
    shape: tuple[int, ...]
    scales: tuple[float, ...]  # float32 values widened exactly
    zero_points: tuple[int, ...]
    quantized_dimension: int
    data: bytes | None  # constant data, None for activations

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, f"type {self.type}")

    def array(self) -> np.ndarray:
        """The constant data as a numpy array of the tensor's type and shape."""
        if self.data is None:
            raise ModelError(f"tensor {self.name!r} has no constant data")
        dtype = _NUMPY_TYPES.get(self.type)
        if dtype is None:
            raise ModelError(f"tensor {self.name!r} has unsupported type {self.type_name}")
        expected = int(np.prod(self.shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if len(self.data) != expected:
            raise ModelError(
                f"tensor {self.name!r}: {len(self.data)} bytes of data for shape "
                f"{list(self.shape)} ({expected} expected): the file is corrupt"
            )
        return np.frombuffer(self.data, dtype=np.dtype(dtype).newbyteorder("<")).reshape(
            self.shape).astype(dtype)


@dataclass(frozen=True)
class OperatorInfo:
    index: int
    op: str  # builtin operator name, e.g. "FULLY_CONNECTED"
    inputs: tuple[int, ...]  # tensor indices, -1 for an omitted optional input
    outputs: tuple[int, ...]
    fused_activation: str | None = None  # FULLY_CONNECTED / ADD
    keep_num_dims: bool = False  # FULLY_CONNECTED
    weights_format: int = 0  # FULLY_CONNECTED
    pot_scale_int16: bool = True  # ADD (the schema's default): int16 power-of-two path allowed


@dataclass(frozen=True)
class TfliteGraph:
    """The first (and for elman, only) subgraph of a model, plus its metadata."""

    subgraph_count: int
    tensors: tuple[TensorInfo, ...]
    operators: tuple[OperatorInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    metadata: dict[str, bytes] = field(default_factory=dict)


def parse_tflite(data: bytes, what: str = "the model") -> TfliteGraph:
    """Parse ``data`` fully, or raise one ModelError saying why it is not a usable .tflite."""
    if len(data) < 8:
        raise ModelError(f"{what} is not a TFLite model: only {len(data)} bytes")
    if not tflite.Model.ModelBufferHasIdentifier(data, 0):
        ident = bytes(data[4:8])
        raise ModelError(
            f"{what} is not a TFLite model: its flatbuffer identifier is {ident!r}, "
            "expected b'TFL3'"
        )
    validate_tflite(data, what)  # as strict as LiteRT, before any accessor reads it
    try:
        return _parse(bytes(data))
    except ModelError:
        raise
    except Exception as exc:  # flatbuffers fails in many ways on damaged bytes
        raise ModelError(
            f"{what} is a corrupt or truncated TFLite file ({len(data)} bytes): "
            f"{type(exc).__name__}: {exc}"
        ) from None


def _parse(data: bytes) -> TfliteGraph:
    model = tflite.Model.GetRootAsModel(data, 0)
    n_sub = model.SubgraphsLength()
    if n_sub < 1:
        raise ModelError("the TFLite model has no subgraph")
    sg = model.Subgraphs(0)
    n_buffers = model.BuffersLength()

    def buffer_bytes(idx: int) -> bytes | None:
        if idx <= 0 or idx >= n_buffers:
            return None
        buf = model.Buffers(idx)
        if buf.Offset() > 1:  # large models keep data outside the flatbuffer
            start, size = int(buf.Offset()), int(buf.Size())
            if start + size > len(data):
                raise ModelError("a buffer points past the end of the file")
            return data[start:start + size]
        if buf.DataLength() == 0:
            return None
        return buf.DataAsNumpy().tobytes()

    tensors = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        q = t.Quantization()
        scales: tuple[float, ...] = ()
        zps: tuple[int, ...] = ()
        qdim = 0
        if q is not None:
            if q.ScaleLength():
                scales = tuple(float(s) for s in q.ScaleAsNumpy().astype(np.float32))
            if q.ZeroPointLength():
                zps = tuple(int(z) for z in q.ZeroPointAsNumpy())
            qdim = int(q.QuantizedDimension())
        shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        tensors.append(TensorInfo(
            index=i, name=(t.Name() or b"").decode("utf-8", "replace"), type=int(t.Type()),
            shape=shape, scales=scales, zero_points=zps, quantized_dimension=qdim,
            data=buffer_bytes(int(t.Buffer())),
        ))

    operators = []
    for i in range(sg.OperatorsLength()):
        o = sg.Operators(i)
        code = model.OperatorCodes(o.OpcodeIndex())
        builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        name = OP_NAMES.get(builtin, f"operator {builtin}")
        if builtin == tflite.BuiltinOperator.CUSTOM:
            name = f"CUSTOM({(code.CustomCode() or b'').decode('utf-8', 'replace')})"
        kwargs: dict = {}
        table = o.BuiltinOptions()
        if name == "FULLY_CONNECTED" and table is not None:
            opt = tflite.FullyConnectedOptions()
            opt.Init(table.Bytes, table.Pos)
            kwargs = {
                "fused_activation": ACTIVATION_NAMES.get(opt.FusedActivationFunction(), "?"),
                "keep_num_dims": bool(opt.KeepNumDims()),
                "weights_format": int(opt.WeightsFormat()),
            }
        elif name == "ADD" and table is not None:
            opt = tflite.AddOptions()
            opt.Init(table.Bytes, table.Pos)
            kwargs = {"fused_activation": ACTIVATION_NAMES.get(opt.FusedActivationFunction(), "?"),
                      "pot_scale_int16": bool(opt.PotScaleInt16())}
        elif name in ("FULLY_CONNECTED", "ADD"):
            kwargs = {"fused_activation": "NONE"}
        operators.append(OperatorInfo(
            index=i, op=name,
            inputs=tuple(int(v) for v in o.InputsAsNumpy()) if o.InputsLength() else (),
            outputs=tuple(int(v) for v in o.OutputsAsNumpy()) if o.OutputsLength() else (),
            **kwargs,
        ))

    metadata = {}
    for i in range(model.MetadataLength()):
        m = model.Metadata(i)
        key = (m.Name() or b"").decode("utf-8", "replace")
        metadata[key] = buffer_bytes(int(m.Buffer())) or b""

    n_t = len(tensors)
    for o in operators:
        for t in o.inputs + o.outputs:
            if t < -1 or t >= n_t:
                raise ModelError(f"operator {o.index} ({o.op}) refers to tensor {t}, "
                                 f"but the subgraph has {n_t}: the file is corrupt")
    inputs = tuple(int(v) for v in sg.InputsAsNumpy()) if sg.InputsLength() else ()
    outputs = tuple(int(v) for v in sg.OutputsAsNumpy()) if sg.OutputsLength() else ()
    for t in inputs + outputs:
        if not 0 <= t < n_t:
            raise ModelError(f"a subgraph input/output refers to tensor {t}, but the subgraph "
                             f"has {n_t}: the file is corrupt")
    return TfliteGraph(
        subgraph_count=n_sub, tensors=tuple(tensors), operators=tuple(operators),
        inputs=inputs, outputs=outputs, metadata=metadata,
    )
