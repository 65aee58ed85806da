"""How the reader recognizes an Elman layer in a ``.tflite`` step graph, by structure.

A cell is ``TANH(ADD(FC(in), FC(h)))``: each TANH reads the output of an ADD,
whose two inputs are the outputs of two FULLY_CONNECTED operators. Of those,
the input one (``FC(x)``, with the layer's bias) reads ``x`` or the TANH output
of the layer below; the recurrent one (``FC(h)``, no bias) reads this layer's
state input. When both read subgraph inputs (the first layer), the recurrent
one has no bias, or else square weights, or else reads the only input
quantized as the state (1/128, 0). Names and list positions are never used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from elman.quantize.flatbuffer import OperatorInfo, TfliteGraph
from elman.quantize.graph_ops import (
    GraphIndex,
    activation_params,
    check_vector_shape,
    has_bias,
    read_fully_connected,
)
from elman.quantize.ir import (
    ADD_LEFT_SHIFT,
    ADD_LEFT_SHIFT_16,
    STATE_SCALE,
    STATE_SCALE_16,
    STATE_ZERO_POINT,
    Add,
    ElmanLayer,
    Tanh,
    state_quant,
)

OPERATORS = ("FULLY_CONNECTED", "ADD", "TANH")


@dataclass(frozen=True)
class Cell:
    """The operators of one Elman cell and the tensors that connect it."""

    tanh: OperatorInfo
    add: OperatorInfo
    input_fc: OperatorInfo
    recurrent_fc: OperatorInfo

    @property
    def operators(self) -> tuple[OperatorInfo, ...]:
        return (self.input_fc, self.recurrent_fc, self.add, self.tanh)

    @property
    def input_tensor(self) -> int:
        """What the layer reads: ``x``, or the new state of the layer below."""
        return self.input_fc.inputs[0]

    @property
    def state_input(self) -> int:
        return self.recurrent_fc.inputs[0]

    @property
    def state_output(self) -> int:
        return self.tanh.outputs[0]


def find_cells(index: GraphIndex, problems: list[str]) -> list[Cell]:
    """Every ``TANH(ADD(FC, FC))`` of the graph, in no particular order."""
    cells = []
    for tanh in index.ops("TANH"):
        add = index.produced_by(tanh.inputs[0], "ADD") if len(tanh.inputs) == 1 else None
        if add is None:
            problems.append("a TANH does not read the output of an ADD")
            continue
        sources = [index.produced_by(t, "FULLY_CONNECTED") for t in add.inputs]
        if len(add.inputs) != 2 or any(s is None for s in sources) or sources[0] is sources[1]:
            problems.append("an ADD does not add the outputs of two FULLY_CONNECTED operators")
            continue
        split = _split(index, sources)  # type: ignore[arg-type]
        if split is None:
            problems.append("cannot tell FC(x) from FC(h): both or neither have a bias, have "
                            "square weights, and read an input quantized as the state")
            continue
        recurrent, inp = split
        cells.append(Cell(tanh=tanh, add=add, input_fc=inp, recurrent_fc=recurrent))
    return cells


def _split(index: GraphIndex, fcs: list[OperatorInfo]
           ) -> tuple[OperatorInfo, OperatorInfo] | None:
    """(recurrent FC, input FC) of a cell."""
    g = index.graph

    def reads_a_layer(op: OperatorInfo) -> bool:
        return index.produced_by(op.inputs[0], "TANH") is not None

    def no_bias(op: OperatorInfo) -> bool:
        return not has_bias(op)

    def square(op: OperatorInfo) -> bool:
        shape = g.tensors[op.inputs[1]].shape if len(op.inputs) > 1 else ()
        return len(shape) == 2 and shape[0] == shape[1]

    def reads_state(op: OperatorInfo) -> bool:
        t = g.tensors[op.inputs[0]]
        return t.scales in ((STATE_SCALE,), (STATE_SCALE_16,)) \
            and t.zero_points == (STATE_ZERO_POINT,)

    readers = [op for op in fcs if reads_a_layer(op)]
    if len(readers) == 1:  # a layer above the first: its input FC reads the layer below
        other = fcs[1] if readers[0] is fcs[0] else fcs[0]
        return other, readers[0]
    for rule in (no_bias, square, reads_state):
        picked = [op for op in fcs if rule(op)]
        if len(picked) == 1:
            return picked[0], fcs[1] if picked[0] is fcs[0] else fcs[0]
    return None


def read_layer(g: TfliteGraph, cell: Cell, name: str, problems: list[str]
               ) -> ElmanLayer | None:
    """The IR of ``cell``; ``name`` prefixes its problems (empty for a one-layer model)."""
    n_before = len(problems)
    prefix = f"{name} " if name else ""
    input_fc = read_fully_connected(g, cell.input_fc, f"{prefix}FC(x)", problems)
    recurrent_fc = read_fully_connected(g, cell.recurrent_fc, f"{prefix}FC(h)", problems)
    if cell.add.fused_activation not in (None, "NONE"):
        problems.append(f"{prefix}ADD has a fused {cell.add.fused_activation} activation")
    z = g.tensors[cell.add.outputs[0]]
    h_new = g.tensors[cell.state_output]
    z_q = activation_params(z, f"{prefix}ADD output", problems)
    tanh_out_q = activation_params(h_new, f"{prefix}TANH output (h_t)", problems)
    bits = tanh_out_q.bits if tanh_out_q is not None else 8
    pinned, pinned_text = state_quant(bits), "(1/128, 0)" if bits == 8 else "(1/32768, 0)"
    if tanh_out_q is not None and tanh_out_q != pinned:
        problems.append(f"{prefix}TANH's output is quantized as (scale {tanh_out_q.scale!r}, "
                        f"zero point {tanh_out_q.zero_point}), expected {pinned_text}")
    if recurrent_fc is not None and recurrent_fc.input != pinned:
        problems.append(
            f"the {prefix}state input h is quantized as (scale {recurrent_fc.input.scale!r}, "
            f"zero point {recurrent_fc.input.zero_point}), not {pinned_text} like TANH's "
            "output, so h_t cannot feed back as h_(t-1) without requantization")
    if z_q is not None and z_q.bits != bits:
        problems.append(f"{prefix}ADD's output has {z_q.bits} bits, TANH's {bits}")
    if bits == 16 and cell.add.pot_scale_int16 and input_fc is not None \
            and recurrent_fc is not None and z_q is not None and all(
                math.frexp(q.scale)[0] == 0.5
                for q in (input_fc.output, recurrent_fc.output, z_q)):
        problems.append(f"{prefix}ADD takes LiteRT's int16 power-of-two path (pot_scale_int16 "
                        "with power-of-two scales), which elman does not implement")
    if input_fc is not None and recurrent_fc is not None:
        if input_fc.out_features != recurrent_fc.out_features:
            problems.append(f"{prefix}FC(x) has {input_fc.out_features} outputs but FC(h) has "
                            f"{recurrent_fc.out_features}")
        if recurrent_fc.in_features != recurrent_fc.out_features:
            problems.append(f"{prefix}FC(h)'s weights are {recurrent_fc.out_features}x"
                            f"{recurrent_fc.in_features}, not square")
    if recurrent_fc is not None:
        units = recurrent_fc.out_features
        check_vector_shape(z, units, f"{prefix}ADD output", problems)
        check_vector_shape(h_new, units, f"{prefix}TANH output (h_t)", problems)
    if len(problems) > n_before or input_fc is None or recurrent_fc is None or z_q is None:
        return None
    shift = ADD_LEFT_SHIFT if bits == 8 else ADD_LEFT_SHIFT_16
    return ElmanLayer(input_fc=input_fc, recurrent_fc=recurrent_fc,
                      add=Add(input1=input_fc.output, input2=recurrent_fc.output, output=z_q,
                              left_shift=shift),
                      tanh=Tanh(input=z_q, output=pinned))
