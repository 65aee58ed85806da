"""Read an elman int8 step model (``.tflite``) into the IR, without TensorFlow.

Tensors are identified by the graph's structure, never by names or positions.
Each layer kind's room recognizes its own operators (``elman.layers.<kind>.reader``:
an Elman cell is ``TANH(ADD(FC(in), FC(h)))``, the head a FULLY_CONNECTED reading
the last layer's new state); this module chains the layers from ``x`` upwards
(layer ``l + 1`` reads layer ``l``'s TANH output), checks that every operator
belongs to exactly one layer and that the subgraph's inputs and outputs are
``x``, each layer's ``h_l`` and ``h_l'``, and ``y``, and records their list
positions in the signature. Everything else (dtypes, per-channel symmetric
weights, int32 biases with scale ``s_in * s_w``, shapes, fused activations, the
pinned state quantization) is validated, and every problem found is reported
in one :class:`~elman.errors.ModelError`. The file's checksum and flatbuffer are
checked first (``elman.quantize.integrity``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from elman.layers import HEAD_KINDS, RECURRENT_KINDS, kind_module
from elman.quantize.flatbuffer import TfliteGraph, parse_tflite
from elman.quantize.graph_ops import GraphIndex, not_a_step_model
from elman.quantize.integrity import check_integrity
from elman.quantize.ir import (
    MAX_LAYERS,
    DenseHead,
    FullyConnected,
    Layer,
    QuantizedModel,
    QuantParams,
    StepSignature,
)
from elman.quantize.metadata import StepMetadata

from elman.errors import ModelError


@dataclass(frozen=True)
class StepGraph:
    """The integer step program found in a ``.tflite`` graph (no metadata): the layers
    in order from the input, and the head's FULLY_CONNECTED (its mode is metadata)."""

    layers: tuple[Layer, ...]
    head: FullyConnected | None
    signature: StepSignature

    @property
    def input_quant(self) -> QuantParams:
        return self.layers[0].input_quant


def read_ir(source: Path | str | bytes | bytearray) -> QuantizedModel:
    """Read an elman step model from a path or bytes into a validated :class:`QuantizedModel`."""
    data, what = _load(source)
    check_integrity(data, what)  # a valid flatbuffer whose contents match its checksum
    graph = parse_tflite(data, what)
    step = analyze_step_graph(graph, what)
    meta = StepMetadata.from_entries(graph.metadata, what)
    _check_metadata(step, meta, what)
    head = None if step.head is None else DenseHead(
        step.head, every_step=meta.head_steps == "every", activation=meta.head_activation)
    return QuantizedModel(
        task=meta.task,
        layers=step.layers,
        head=head,
        signature=step.signature,
        labels=meta.labels,
        embedding=meta.embedding,
        norm_mean=meta.norm_mean,
        norm_std=meta.norm_std,
        window_steps=meta.window_steps,
        input_stride=meta.input_stride,
        stride_mode=meta.stride_mode,
        input_deltas=meta.input_deltas,
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
    """The layers, head and signature of ``g``, or one ModelError listing every problem."""
    problems: list[str] = []
    if g.subgraph_count != 1:
        problems.append(f"it has {g.subgraph_count} subgraphs (an elman step model has 1)")
    recurrent = [kind_module(k, "reader") for k in RECURRENT_KINDS]
    heads = [kind_module(k, "reader") for k in HEAD_KINDS]
    known = {op for kind in recurrent + heads for op in kind.OPERATORS}
    others = sorted({op.op for op in g.operators} - known)
    if others:
        problems.append("it has operators an elman step model does not: " + ", ".join(others))
    if problems:
        raise not_a_step_model(what, problems)

    index = GraphIndex(g)
    found = [(kind, cell) for kind in recurrent for cell in kind.find_cells(index, problems)]
    if problems:
        raise not_a_step_model(what, problems)
    if not 1 <= len(found) <= MAX_LAYERS:
        raise not_a_step_model(what, [
            f"it has {len(found)} recurrent layers (TANH of ADD of two FULLY_CONNECTED); "
            f"an elman step model has 1 to {MAX_LAYERS}"])
    chain = _chain(index, found, problems)
    if problems:
        raise not_a_step_model(what, problems)

    claimed = {op.index for _, cell in chain for op in cell.operators}
    top = chain[-1][1].state_output
    head_kind, head_op = None, None
    for kind in heads:
        op = kind.find_head(index, top, claimed, problems)
        if op is not None and head_op is None:
            head_kind, head_op = kind, op
            claimed.add(op.index)
    loose = [op for op in g.operators if op.index not in claimed]
    if loose:
        problems.append(
            f"{len(loose)} of its operators ({', '.join(sorted({op.op for op in loose}))}) are "
            "not wired as FC(x) + FC(h) -> ADD -> TANH per layer -> FC(head)")
    for i, (_, cell) in enumerate(chain):
        allowed = {chain[i + 1][1].input_fc.index} if i + 1 < len(chain) else (
            {head_op.index} if head_op is not None else set())
        extra = [op.op for op in index.read_by(cell.state_output) if op.index not in allowed]
        if extra:
            problems.append(f"{_name(i, len(chain))}TANH's output also feeds {', '.join(extra)}")

    x_t = chain[0][1].input_tensor
    h_in = [cell.state_input for _, cell in chain]
    h_out = [cell.state_output for _, cell in chain]
    y_t = head_op.outputs[0] if head_op is not None else None
    if len({x_t, *h_in}) != 1 + len(h_in):
        problems.append("FC(x) and FC(h) read the same tensor")
    if sorted(g.inputs) != sorted([x_t, *h_in]):
        problems.append(f"its inputs are tensors {list(g.inputs)}, expected x ({x_t}) and "
                        f"h ({', '.join(map(str, h_in))}) exactly")
    expected_outputs = h_out + ([y_t] if y_t is not None else [])
    if sorted(g.outputs) != sorted(expected_outputs):
        problems.append(f"its outputs are tensors {list(g.outputs)}, expected h_t "
                        f"({', '.join(map(str, h_out))})"
                        + (f" and y_t ({y_t})" if y_t is not None else ""))

    layers = [kind.read_layer(g, cell, _name(i, len(chain)).strip(), problems)
              for i, (kind, cell) in enumerate(chain)]
    head = None if head_op is None else head_kind.read_head(g, head_op, problems)
    if problems or any(layer is None for layer in layers) or (head_op and head is None):
        raise not_a_step_model(what, problems or ["its layers could not be read"])
    for i, (below, above) in enumerate(zip(layers, layers[1:], strict=False), start=2):
        if above.input_quant != below.output_quant:
            problems.append(f"layer {i} reads layer {i - 1}'s state with another quantization")
    if head is not None and head.in_features != layers[-1].units:
        problems.append(f"FC(head) reads {head.in_features} features, the state has "
                        f"{layers[-1].units}")
    if problems:
        raise not_a_step_model(what, problems)
    signature = StepSignature(
        x_input=g.inputs.index(x_t),
        h_inputs=tuple(g.inputs.index(t) for t in h_in),
        h_outputs=tuple(g.outputs.index(t) for t in h_out),
        y_output=None if y_t is None else g.outputs.index(y_t),
    )
    return StepGraph(layers=tuple(layers), head=head, signature=signature)


def _chain(index: GraphIndex, found: list, problems: list[str]) -> list:
    """The layers in order: the first reads a subgraph input (``x``), each next one the
    new state of the one before."""
    by_input = {}
    for kind, cell in found:
        by_input.setdefault(cell.input_tensor, []).append((kind, cell))
    firsts = [kc for kc in found if index.is_graph_input(kc[1].input_tensor)]
    if len(firsts) != 1 or any(len(v) > 1 for v in by_input.values()):
        problems.append(f"its {len(found)} recurrent layers do not form one chain "
                        "x -> layer 1 -> ... -> head")
        return []
    chain = [firsts[0]]
    while len(chain) < len(found):
        nxt = by_input.get(chain[-1][1].state_output)
        if not nxt:
            problems.append(f"its {len(found)} recurrent layers do not form one chain "
                            "x -> layer 1 -> ... -> head")
            return []
        chain.append(nxt[0])
    return chain


def _name(i: int, count: int) -> str:
    """How problems name layer ``i`` (0-based): nothing for a one-layer model."""
    return "" if count == 1 else f"layer {i + 1} "


def _check_metadata(step: StepGraph, meta: StepMetadata, what: str) -> None:
    problems = []
    d = step.layers[0].input_dim
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
        raise not_a_step_model(what, problems)
