"""How the reader recognizes the dense head: the one FULLY_CONNECTED that reads the last
layer's new state (TANH output) and is not part of a layer."""

from __future__ import annotations

from elman.quantize.flatbuffer import OperatorInfo, TfliteGraph
from elman.quantize.graph_ops import GraphIndex, read_fully_connected
from elman.quantize.ir import FullyConnected

OPERATORS = ("FULLY_CONNECTED",)


def find_head(index: GraphIndex, reads: int, claimed: set[int], problems: list[str]
              ) -> OperatorInfo | None:
    """The head reading tensor ``reads``, or None; ``claimed``: operators of the layers."""
    fcs = [op for op in index.read_by(reads)
           if op.op == "FULLY_CONNECTED" and op.index not in claimed]
    if len(fcs) > 1:
        problems.append(f"the last layer's state feeds {len(fcs)} FULLY_CONNECTED operators "
                        "(a head is one)")
        return None
    return fcs[0] if fcs else None


def read_head(g: TfliteGraph, op: OperatorInfo, problems: list[str]) -> FullyConnected | None:
    return read_fully_connected(g, op, "FC(head)", problems)
