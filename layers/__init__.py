"""Layer kinds: one room per kind of layer a step model can hold.

A model (``elman.quantize.ir.QuantizedModel``) is 1 to 3 recurrent layers run in
order at every step, then an optional head. Each kind's IR is a frozen
dataclass in ``elman.quantize.ir`` (``LAYER_KINDS``, ``HEAD_KINDS``); everything
else the kind needs lives in its room, ``elman.layers.<kind>``, one module per
concern, which the stages find through :func:`kind_module`:

``reader``
    how the ``.tflite`` reader recognizes the kind by graph structure
    (``OPERATORS``; recurrent kinds: ``find_cells`` and ``read_layer``;
    heads: ``find_head`` and ``read_head``);
``reference``
    its step in the plain integer reference program (``elman.runtime.reference``);
``engine``
    its step in the simulator's numpy engine (whole sequences at once);
``compiled``
    the same loop compiled by numba (the simulator's default engine);
``codegen`` and ``templates/``
    its view for the C generator and its C template partials;
``describe``
    its lines in ``elman inspect``;
``random_layer``
    a random instance for property tests (``elman.layers.random_model`` composes
    whole models from them).

Today's kinds: ``elman`` (an Elman cell, recurrent) and ``dense`` (the head).
A new kind is a new room plus its name in ``RECURRENT_KINDS`` or ``HEAD_KINDS``
and its dataclass in the IR.
"""

from __future__ import annotations

import importlib
from types import ModuleType

RECURRENT_KINDS: tuple[str, ...] = ("elman",)
HEAD_KINDS: tuple[str, ...] = ("dense",)
PARTS = ("reader", "reference", "engine", "compiled", "codegen", "describe", "random_layer")


def kind_module(kind: str, part: str) -> ModuleType:
    """The module ``part`` of layer kind ``kind``'s room, e.g. ``("elman", "engine")``."""
    if kind not in RECURRENT_KINDS + HEAD_KINDS:
        raise ValueError(f"unknown layer kind {kind!r}; known: "
                         f"{', '.join(RECURRENT_KINDS + HEAD_KINDS)}")
    if part not in PARTS:
        raise ValueError(f"unknown layer-kind part {part!r}; one of {', '.join(PARTS)}")
    return importlib.import_module(f"elman.layers.{kind}.{part}")
