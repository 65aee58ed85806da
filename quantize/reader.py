"""Read an elman int8 step model (``.tflite``) into the IR, without TensorFlow.

Tensors are identified by the graph's structure, never by names or positions:
TANH's input comes from the one ADD; ADD's two inputs come from two
FULLY_CONNECTED ops, of which the recurrent one reads the subgraph input that
is not ``x`` (it has no bias; when both or neither have one, its weight matrix
is the square one); the head, if any, is the FULLY_CONNECTED that reads TANH's
output. Everything else (dtypes, per-channel symmetric weights, int32 biases
with scale ``s_in * s_w``, shapes, fused activations, the pinned state
quantization) is validated, and every problem found is reported in one
:class:`~elman.errors.ModelError`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from elman.quantize.flatbuffer import OperatorInfo, TensorInfo, TfliteGraph, parse_tflite
from elman.quantize.integrity import check_integrity
from elman.quantize.ir import (
    STATE_SCALE,
    STATE_ZERO_POINT,
    Add,
    FullyConnected,
    QuantizedRNN,
    QuantParams,
    StepSignature,
    Tanh,
)
from elman.quantize.metadata import StepMetadata

from elman.errors import ModelError

INT8 = 9  # tflite.TensorType.INT8
INT32 = 2  # tflite.TensorType.INT32
_BIAS_SCALE_RTOL = 1e-5


@dataclass(frozen=True)
class StepGraph:
    """The integer step program found in a ``.tflite`` graph (no metadata)."""

    input_fc: FullyConnected
    recurrent_fc: FullyConnected
    add: Add
    tanh: Tanh
    head: FullyConnected | None
    signature: StepSignature


def read_ir(source: Path | str | bytes | bytearray) -> QuantizedRNN:
    """Read an elman step model from a path or bytes into a validated :class:`QuantizedRNN`."""
    data, what = _load(source)
    check_integrity(data, what)  # a valid flatbuffer whose contents match its checksum
    graph = parse_tflite(data, what)
    step = analyze_step_graph(graph, what)
    meta = StepMetadata.from_entries(graph.metadata, what)
    _check_metadata(step, meta, what)
    return QuantizedRNN(
        task=meta.task,
        input_fc=step.input_fc,
        recurrent_fc=step.recurrent_fc,
        add=step.add,
        tanh=step.tanh,
        head=step.head,
        signature=step.signature,
        labels=meta.labels,
        embedding=meta.embedding,
        norm_mean=meta.norm_mean,
        norm_std=meta.norm_std,
        source_sha256=hashlib.sha256(data).hexdigest(),
        model_bytes=len(data),
    )


def read_step_graph(data: bytes, what: str = "the model") -> StepGraph:
    """The step program of a converted model that may not carry elman metadata yet."""
    return analyze_step_graph(parse_tflite(data, what), what)


def _load(source: Path | str | bytes | bytearray) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), "the model"
    path = Path(source)
    if not path.is_file():
        raise ModelError(f"{path} does not exist or is not a file")
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None


def analyze_step_graph(g: TfliteGraph, what: str = "the model") -> StepGraph:
    problems: list[str] = []
    if g.subgraph_count != 1:
        problems.append(f"it has {g.subgraph_count} subgraphs (an elman step model has 1)")
    ops_by_kind: dict[str, list[OperatorInfo]] = {}
    for op in g.operators:
        ops_by_kind.setdefault(op.op, []).append(op)
    others = sorted({op.op for op in g.operators} - {"FULLY_CONNECTED", "ADD", "TANH"})
    if others:
        problems.append("it has operators an elman step model does not: " + ", ".join(others))
    fcs = ops_by_kind.get("FULLY_CONNECTED", [])
    adds = ops_by_kind.get("ADD", [])
    tanhs = ops_by_kind.get("TANH", [])
    if len(adds) != 1 or len(tanhs) != 1 or len(fcs) not in (2, 3):
        problems.append(
            f"it has {len(fcs)} FULLY_CONNECTED, {len(adds)} ADD and {len(tanhs)} TANH "
            "operators (an elman step model has 2 or 3, 1 and 1)"
        )
    if problems:
        raise _error(what, problems)

    add, tanh = adds[0], tanhs[0]
    producer = {t: op for op in g.operators for t in op.outputs}
    consumers: dict[int, list[OperatorInfo]] = {}
    for op in g.operators:
        for t in op.inputs:
            consumers.setdefault(t, []).append(op)

    if len(tanh.inputs) != 1 or tanh.inputs[0] != add.outputs[0]:
        raise _error(what, ["TANH does not read the output of ADD"])
    add_sources = [producer.get(t) for t in add.inputs]
    if len(add.inputs) != 2 or any(p is None or p.op != "FULLY_CONNECTED" for p in add_sources):
        raise _error(what, ["ADD does not add the outputs of two FULLY_CONNECTED operators"])
    h_out = tanh.outputs[0]
    head_ops = [op for op in consumers.get(h_out, []) if op.op == "FULLY_CONNECTED"]
    cell_fcs = [p for p in add_sources if p is not None]
    if len(head_ops) + 2 != len(fcs) or len(head_ops) > 1 or cell_fcs[0] is cell_fcs[1]:
        raise _error(what, ["its FULLY_CONNECTED operators are not wired as FC(x) + FC(h) "
                            "-> ADD -> TANH -> FC(head)"])
    head_op = head_ops[0] if head_ops else None
    other = [op for op in consumers.get(h_out, []) if op is not head_op]
    if other:
        problems.append(f"TANH's output also feeds {', '.join(o.op for o in other)}")

    rec_op, in_op = _split_cell_fcs(g, cell_fcs, what)
    x_t, h_t = in_op.inputs[0], rec_op.inputs[0]
    if x_t == h_t:
        problems.append("FC(x) and FC(h) read the same tensor")
    if sorted(g.inputs) != sorted([x_t, h_t]):
        problems.append(f"its inputs are tensors {list(g.inputs)}, expected x ({x_t}) and "
                        f"h ({h_t}) exactly")
    y_t = head_op.outputs[0] if head_op is not None else None
    expected_outputs = [h_out] + ([y_t] if y_t is not None else [])
    if sorted(g.outputs) != sorted(expected_outputs):
        problems.append(f"its outputs are tensors {list(g.outputs)}, expected h_t ({h_out})"
                        + (f" and y_t ({y_t})" if y_t is not None else ""))

    input_fc = _fully_connected(g, in_op, "FC(x)", problems)
    recurrent_fc = _fully_connected(g, rec_op, "FC(h)", problems)
    head = _fully_connected(g, head_op, "FC(head)", problems) if head_op else None
    for op in (add,):
        if op.fused_activation not in (None, "NONE"):
            problems.append(f"ADD has a fused {op.fused_activation} activation")
    z = g.tensors[add.outputs[0]]
    h_new = g.tensors[h_out]
    z_q = _activation_params(z, "ADD output", problems)
    tanh_out_q = _activation_params(h_new, "TANH output (h_t)", problems)
    state = QuantParams(STATE_SCALE, STATE_ZERO_POINT)
    if tanh_out_q is not None and tanh_out_q != state:
        problems.append(f"TANH's output is quantized as (scale {tanh_out_q.scale!r}, zero point "
                        f"{tanh_out_q.zero_point}), expected (1/128, 0)")
    if recurrent_fc is not None and recurrent_fc.input != state:
        problems.append(
            f"the state input h is quantized as (scale {recurrent_fc.input.scale!r}, zero point "
            f"{recurrent_fc.input.zero_point}), not (1/128, 0) like TANH's output, so h_t "
            "cannot feed back as h_(t-1) without requantization"
        )
    if input_fc is not None and recurrent_fc is not None:
        if input_fc.out_features != recurrent_fc.out_features:
            problems.append(f"FC(x) has {input_fc.out_features} outputs but FC(h) has "
                            f"{recurrent_fc.out_features}")
        if recurrent_fc.in_features != recurrent_fc.out_features:
            problems.append(f"FC(h)'s weights are {recurrent_fc.out_features}x"
                            f"{recurrent_fc.in_features}, not square")
    if (head is not None and recurrent_fc is not None
            and head.in_features != recurrent_fc.out_features):
        problems.append(f"FC(head) reads {head.in_features} features, the state has "
                        f"{recurrent_fc.out_features}")
    if recurrent_fc is not None:
        units = recurrent_fc.out_features
        for t, label in ((z, "ADD output"), (h_new, "TANH output (h_t)")):
            if t.shape not in ((1, units), (units,)):
                problems.append(f"the {label} has shape {list(t.shape)}, expected [1, {units}]")
    if problems or input_fc is None or recurrent_fc is None or z_q is None:
        raise _error(what, problems)

    signature = StepSignature(
        x_input=g.inputs.index(x_t), h_input=g.inputs.index(h_t),
        h_output=g.outputs.index(h_out),
        y_output=None if y_t is None else g.outputs.index(y_t),
    )
    return StepGraph(
        input_fc=input_fc, recurrent_fc=recurrent_fc,
        add=Add(input1=input_fc.output, input2=recurrent_fc.output, output=z_q),
        tanh=Tanh(input=z_q, output=state), head=head, signature=signature,
    )


def _split_cell_fcs(
    g: TfliteGraph, cell_fcs: list[OperatorInfo], what: str
) -> tuple[OperatorInfo, OperatorInfo]:
    """(recurrent FC, input FC): the recurrent one has no bias, or else square weights,
    or else reads the only input quantized as the state (1/128, 0)."""
    def has_bias(op: OperatorInfo) -> bool:
        return len(op.inputs) > 2 and op.inputs[2] >= 0

    def square(op: OperatorInfo) -> bool:
        shape = g.tensors[op.inputs[1]].shape if len(op.inputs) > 1 else ()
        return len(shape) == 2 and shape[0] == shape[1]

    def reads_state(op: OperatorInfo) -> bool:
        t = g.tensors[op.inputs[0]]
        return t.scales == (STATE_SCALE,) and t.zero_points == (STATE_ZERO_POINT,)

    for rule in (lambda op: not has_bias(op), square, reads_state):
        picked = [op for op in cell_fcs if rule(op)]
        if len(picked) == 1:
            other = cell_fcs[1] if picked[0] is cell_fcs[0] else cell_fcs[0]
            return picked[0], other
    raise _error(what, ["cannot tell FC(x) from FC(h): both or neither have a bias, have "
                        "square weights, and read an input quantized as the state"])


def _fully_connected(
    g: TfliteGraph, op: OperatorInfo, label: str, problems: list[str]
) -> FullyConnected | None:
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
    in_q = _activation_params(inp, f"{label} input", problems)
    out_q = _activation_params(out, f"{label} output", problems)
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
    has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
    bias = np.zeros(out_f, np.int32)
    if has_bias:
        b = g.tensors[op.inputs[2]]
        if b.type != INT32:
            problems.append(f"{label} bias is {b.type_name}, expected INT32")
        elif b.shape != (out_f,) or b.data is None:
            problems.append(f"{label} bias is not a constant vector of {out_f} "
                            f"(shape {list(b.shape)})")
        else:
            bias = b.array()
            if any(z != 0 for z in b.zero_points):
                problems.append(f"{label} bias has a non-zero zero point")
            if in_q is not None and len(b.scales) == out_f == len(w.scales):
                expected = np.float64(in_q.scale) * np.array(w.scales, np.float64)
                if not np.allclose(b.scales, expected, rtol=_BIAS_SCALE_RTOL, atol=0):
                    problems.append(f"{label} bias scales are not input scale x weight scales")
            elif in_q is not None:
                problems.append(f"{label} bias has {len(b.scales)} scales for {out_f} channels")
    if len(problems) > n_before or in_q is None or out_q is None:
        return None
    return FullyConnected(
        weights=w.array(), weight_scales=np.array(w.scales, np.float32), bias=bias,
        has_bias=has_bias, input=in_q, output=out_q,
    )


def _activation_params(t: TensorInfo, label: str, problems: list[str]) -> QuantParams | None:
    if t.type != INT8:
        problems.append(f"the {label} is {t.type_name}, expected INT8")
        return None
    if len(t.scales) != 1 or len(t.zero_points) != 1:
        problems.append(f"the {label} is not quantized per tensor "
                        f"({len(t.scales)} scales, {len(t.zero_points)} zero points)")
        return None
    scale, zp = t.scales[0], t.zero_points[0]
    if not (scale > 0 and math.isfinite(scale)) or not -128 <= zp <= 127:
        problems.append(f"the {label} has an invalid quantization (scale {scale!r}, "
                        f"zero point {zp})")
        return None
    return QuantParams(scale, zp)


def _check_metadata(step: StepGraph, meta: StepMetadata, what: str) -> None:
    problems = []
    d = step.input_fc.in_features
    o = step.head.out_features if step.head is not None else 0
    if meta.embedding is not None and meta.embedding.shape[1] != d:
        problems.append(f"the embedding table has rows of {meta.embedding.shape[1]}, "
                        f"the step model's x has {d}")
    if meta.task == "language_model":
        if meta.embedding is None:
            problems.append("a language model must carry its embedding table")
        elif step.head is not None and meta.embedding.shape[0] != o:
            problems.append(f"the vocabulary has {meta.embedding.shape[0]} tokens but the head "
                            f"has {o} outputs")
    if meta.labels and step.head is not None and len(meta.labels) != o:
        problems.append(f"{len(meta.labels)} labels for {o} outputs")
    for key in ("norm_mean", "norm_std"):
        v = getattr(meta, key)
        if v is not None and v.shape != (d,):
            problems.append(f"metadata {key} has {v.size} values for {d} inputs")
    if problems:
        raise _error(what, problems)


def _error(what: str, problems: list[str]) -> ModelError:
    if len(problems) == 1:
        return ModelError(f"{what} is not an elman step model: {problems[0]}")
    return ModelError(f"{what} is not an elman step model:\n"
                      + "\n".join(f"  - {p}" for p in problems))
