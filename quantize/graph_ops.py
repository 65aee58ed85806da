"""What every layer kind's reader needs from a parsed ``.tflite`` graph.

:class:`GraphIndex` answers "who produces this tensor" and "who reads it";
:func:`read_fully_connected` and :func:`activation_params` turn an operator's
tensors into IR pieces, appending every problem they find to a list instead of
raising, so that the reader can report all of them at once.
"""

from __future__ import annotations

import math

import numpy as np
from elman.quantize.flatbuffer import OperatorInfo, TensorInfo, TfliteGraph
from elman.quantize.ir import FullyConnected, QuantParams

from elman.errors import ModelError

INT8 = 9  # tflite.TensorType.INT8
INT16 = 7  # tflite.TensorType.INT16
INT32 = 2  # tflite.TensorType.INT32
INT64 = 4  # tflite.TensorType.INT64
BIAS_SCALE_RTOL = 1e-5


class GraphIndex:
    """Producer and consumers of every tensor of a graph."""

    def __init__(self, graph: TfliteGraph):
        self.graph = graph
        self.producer: dict[int, OperatorInfo] = {t: op for op in graph.operators
                                                  for t in op.outputs}
        self.consumers: dict[int, list[OperatorInfo]] = {}
        for op in graph.operators:
            for t in op.inputs:
                self.consumers.setdefault(t, []).append(op)

    def ops(self, kind: str) -> list[OperatorInfo]:
        return [op for op in self.graph.operators if op.op == kind]

    def produced_by(self, tensor: int, kind: str) -> OperatorInfo | None:
        op = self.producer.get(tensor)
        return op if op is not None and op.op == kind else None

    def read_by(self, tensor: int) -> list[OperatorInfo]:
        return self.consumers.get(tensor, [])

    def is_graph_input(self, tensor: int) -> bool:
        return tensor in self.graph.inputs


def has_bias(op: OperatorInfo) -> bool:
    return len(op.inputs) > 2 and op.inputs[2] >= 0


def read_fully_connected(g: TfliteGraph, op: OperatorInfo, label: str,
                         problems: list[str]) -> FullyConnected | None:
    """The FULLY_CONNECTED ``op`` as IR, or None after appending what is wrong with it."""
    n_before = len(problems)
    if len(op.inputs) < 2:
        problems.append(f"{label} has {len(op.inputs)} inputs")
        return None
    if op.fused_activation not in (None, "NONE"):
        problems.append(f"{label} has a fused {op.fused_activation} activation")
    if op.keep_num_dims:
        problems.append(f"{label} has keep_num_dims set")
    if op.weights_format != 0:
        problems.append(f"{label} uses a shuffled weights format")
    inp = g.tensors[op.inputs[0]]
    w = g.tensors[op.inputs[1]]
    out = g.tensors[op.outputs[0]]
    in_q = activation_params(inp, f"{label} input", problems)
    out_q = activation_params(out, f"{label} output", problems)
    if w.type != INT8:
        problems.append(f"{label} weights are {w.type_name}, expected INT8")
    if len(w.shape) != 2 or w.data is None:
        problems.append(f"{label} weights are not a constant 2-D matrix (shape {list(w.shape)})")
        return None
    out_f, in_f = w.shape
    if len(w.scales) != out_f or w.quantized_dimension != 0:
        problems.append(f"{label} weights are not quantized per output channel "
                        f"({len(w.scales)} scales for {out_f} channels)")
    if any(z != 0 for z in w.zero_points) or len(w.zero_points) not in (len(w.scales), 1):
        problems.append(f"{label} weights are not symmetric (zero points must all be 0)")
    if any(not (s > 0 and math.isfinite(s)) for s in w.scales):
        problems.append(f"{label} weights have a non-positive or non-finite scale")
    if inp.shape not in ((1, in_f), (in_f,)):
        problems.append(f"{label} input has shape {list(inp.shape)}, expected [1, {in_f}]")
    if out.shape not in ((1, out_f), (out_f,)):
        problems.append(f"{label} output has shape {list(out.shape)}, expected [1, {out_f}]")
    bias = np.zeros(out_f, np.int64)
    wide = in_q is not None and in_q.bits == 16  # 16x8: int64 bias
    if in_q is not None and out_q is not None and in_q.bits != out_q.bits:
        problems.append(f"{label} reads {in_q.bits}-bit and writes {out_q.bits}-bit values")
    if has_bias(op):
        b = g.tensors[op.inputs[2]]
        if b.type != (INT64 if wide else INT32):
            problems.append(f"{label} bias is {b.type_name}, expected "
                            f"{'INT64' if wide else 'INT32'}")
        elif b.shape != (out_f,) or b.data is None:
            problems.append(f"{label} bias is not a constant vector of {out_f} "
                            f"(shape {list(b.shape)})")
        else:
            bias = b.array()
            if any(z != 0 for z in b.zero_points):
                problems.append(f"{label} bias has a non-zero zero point")
            if in_q is not None and len(b.scales) == out_f == len(w.scales):
                expected = np.float64(in_q.scale) * np.array(w.scales, np.float64)
                if not np.allclose(b.scales, expected, rtol=BIAS_SCALE_RTOL, atol=0):
                    problems.append(f"{label} bias scales are not input scale x weight scales")
            elif in_q is not None:
                problems.append(f"{label} bias has {len(b.scales)} scales for {out_f} channels")
    if len(problems) > n_before or in_q is None or out_q is None:
        return None
    return FullyConnected(
        weights=w.array(), weight_scales=np.array(w.scales, np.float32), bias=bias,
        has_bias=has_bias(op), input=in_q, output=out_q,
    )


def activation_params(t: TensorInfo, label: str, problems: list[str]) -> QuantParams | None:
    """The per-tensor int8 (or 16x8's int16, zero point 0) quantization of an activation,
    or None after a problem."""
    if t.type not in (INT8, INT16):
        problems.append(f"the {label} is {t.type_name}, expected INT8 (or INT16)")
        return None
    if len(t.scales) != 1 or len(t.zero_points) != 1:
        problems.append(f"the {label} is not quantized per tensor "
                        f"({len(t.scales)} scales, {len(t.zero_points)} zero points)")
        return None
    scale, zp = t.scales[0], t.zero_points[0]
    bits = 8 if t.type == INT8 else 16
    if not (scale > 0 and math.isfinite(scale)) or not -128 <= zp <= 127 or (
            bits == 16 and zp != 0):
        problems.append(f"the {label} has an invalid quantization (scale {scale!r}, "
                        f"zero point {zp})")
        return None
    return QuantParams(scale, zp, bits)


def check_vector_shape(t: TensorInfo, n: int, label: str, problems: list[str]) -> None:
    if t.shape not in ((1, n), (n,)):
        problems.append(f"the {label} has shape {list(t.shape)}, expected [1, {n}]")


def not_a_step_model(what: str, problems: list[str]) -> ModelError:
    """One error listing every problem."""
    if len(problems) == 1:
        return ModelError(f"{what} is not an elman step model: {problems[0]}")
    return ModelError(f"{what} is not an elman step model:\n"
                      + "\n".join(f"  - {p}" for p in problems))
