"""Sizes bounded before training starts: the model must fit in memory and in a ``.tflite``.

``--units 100000`` would otherwise end, minutes later, in a TensorFlow
out-of-memory traceback (or a converter that cannot write a flatbuffer over
2 GiB). :func:`check_sizes` estimates what training holds at once and refuses,
in one line, what cannot work:

- the int8 model (weights, biases, the embedding table) must fit in a
  ``.tflite``, which a flatbuffer caps at 2 GiB;
- training holds the float32 weights, their gradients and Adam's two moments
  (16 bytes per parameter) plus one batch of activations kept for
  backpropagation through time (inputs, states, pre-activations, outputs and
  their gradients: about ``4 * batch * steps * (input + 3 * units + 3 * outputs)``
  bytes); that must fit in the memory this machine has available.
"""

from __future__ import annotations

import os

from elman.errors import ElmanError

MAX_TFLITE_BYTES = 2**31 - 1
BYTES_PER_PARAMETER = 16  # float32 weight, gradient, Adam's m and v


def parameter_count(units: int, input_dim: int, output_dim: int, vocab: int = 0,
                    layers: int = 1) -> int:
    """Parameters of [Embedding(vocab, input_dim)] -> ``layers`` x SimpleRNN(units) ->
    Dense(output_dim)."""
    return (units * (input_dim + units + 1) + (layers - 1) * units * (2 * units + 1)
            + output_dim * (units + 1) + vocab * input_dim)


def int8_model_bytes(units: int, input_dim: int, output_dim: int, vocab: int = 0,
                     layers: int = 1) -> int:
    """Bytes of the int8 step model's constants (weights, int32 biases, embedding table)."""
    weights = units * (input_dim + units) + (layers - 1) * 2 * units * units + output_dim * units
    return weights + 4 * (layers * units + output_dim) + vocab * input_dim


def training_bytes(units: int, input_dim: int, output_dim: int, batch: int, steps: int,
                   vocab: int = 0, layers: int = 1) -> int:
    """An estimate of the memory training holds at once (see the module docstring)."""
    params = parameter_count(units, input_dim, output_dim, vocab, layers)
    activations = 4 * batch * steps * (input_dim + 3 * layers * units + 3 * output_dim)
    return BYTES_PER_PARAMETER * params + activations


def available_memory_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` (None where the system does not say)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: int) -> str:
    return f"{n / 1e9:,.1f} GB"


def check_sizes(units: int, input_dim: int, output_dim: int, batch: int, steps: int,
                vocab: int = 0, layers: int = 1, available: int | None = -1) -> None:
    """Refuse a model that cannot be written as a ``.tflite`` or trained in ``available``
    bytes of memory (default: what the machine has available now)."""
    model = int8_model_bytes(units, input_dim, output_dim, vocab, layers)
    if model > MAX_TFLITE_BYTES:
        raise ElmanError(
            f"--units {units} makes an int8 model of {_gb(model)}, more than a .tflite file can "
            "hold (2 GiB): choose fewer units" + (" or a smaller --embedding" if vocab else ""))
    if available == -1:
        available = available_memory_bytes()
    need = training_bytes(units, input_dim, output_dim, batch, steps, vocab, layers)
    if available is not None and need > available:
        raise ElmanError(
            f"--units {units} with --batch {batch} and {steps}-step windows needs about "
            f"{_gb(need)} of memory to train (weights, gradients, Adam's moments and one "
            f"batch of activations), but {_gb(available)} is available: choose fewer units, "
            "a smaller --batch or a shorter --bptt")
