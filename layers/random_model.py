"""Random layered models, built directly as IR (no TensorFlow): for property tests and benchmarks.

``random_model(input_dim, (64, 32), 4, seed=...)`` gives a valid
:class:`~elman.quantize.ir.QuantizedModel` of any shape elman supports: 1 to 3
stacked layers of any size, a head answering at every step or at the last, or
none, text models with an embedding table. The same arguments give the same
model on every machine and TF version (golden files depend on it). Each layer
kind's room draws its own layers (``random_layer``); scales spread over wide
ranges (``extreme``: several decades more, zero points and biases at their
ends), within what a valid TFLite model can hold. Use it to test an
implementation of elman's integer program of your own against the simulator::

    model = random_model(6, (32, 32), 4, seed=1, extreme=True)
    x = np.random.default_rng(1).integers(-128, 128, (2, 20, 6), dtype=np.int8)
    expected = Simulator(model, "tflm").run(x)   # .h (every layer's state), .y
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from elman.layers import kind_module
from elman.layers.random_parts import RandomDraws
from elman.quantize.ir import QuantizedModel, StepSignature


def random_model(
    input_dim: int,
    layer_units: int | Sequence[int],
    output_dim: int,
    *,
    seed: int = 0,
    vocab_size: int = 0,
    extreme: bool = False,
    labels: tuple[str, ...] | None = None,
    every_step: bool | None = None,
    activation: str = "linear",
    window_steps: int = 0,
    state_bits: int = 8,
) -> QuantizedModel:
    """A random int8 model (``state_bits=16``: 16x8, int16 activations and state):
    ``layer_units`` one size per layer (an int: one layer);
    ``output_dim=0`` for no head; ``vocab_size>0`` for a text model. ``every_step``
    defaults to what the task implies (a language model answers at every step)."""
    units = (layer_units,) if isinstance(layer_units, int) else tuple(layer_units)
    draws = RandomDraws(np.random.default_rng(seed), extreme, state_bits)
    elman = kind_module("elman", "random_layer")
    layers, below = [], None
    for n in units:
        layer = elman.random_layer(draws, input_dim if below is None else below.units, n,
                                   None if below is None else below.output_quant)
        layers.append(layer)
        below = layer
    task = "language_model" if vocab_size else "classification"
    if every_step is None:
        every_step = task == "language_model"
    head = None
    if output_dim:
        head = kind_module("dense", "random_layer").random_head(
            draws, units[-1], output_dim, every_step, activation)
    embedding = None
    if vocab_size:
        embedding = draws.rng.integers(-128, 128, size=(vocab_size, input_dim), dtype=np.int8) \
            if state_bits == 8 else \
            draws.rng.integers(-32768, 32768, size=(vocab_size, input_dim), dtype=np.int16)
    if labels is None:
        count = vocab_size if vocab_size else output_dim
        labels = tuple(f"c{i}" for i in range(count))
    norm = None if vocab_size else draws.rng.normal(0, 1, input_dim).astype(np.float32)
    n = len(layers)
    return QuantizedModel(
        task=task,
        layers=tuple(layers),
        head=head,
        signature=StepSignature(0, tuple(range(1, n + 1)), tuple(range(n)),
                                n if head is not None else None),
        labels=labels,
        embedding=embedding,
        norm_mean=norm,
        norm_std=None if norm is None else (np.abs(norm) + 0.5).astype(np.float32),
        window_steps=window_steps,
        source_sha256=f"{seed:064x}",
        model_bytes=0,
    )
