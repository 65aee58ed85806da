"""The held-out data ``elman verify`` runs every implementation on, quantized once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from elman.errors import ElmanError
from elman.quantize.ir import QuantizedModel
from elman.runtime.simulator import embed_tokens


@dataclass(frozen=True)
class VerifyInputs:
    """The held-out data, ready for every implementation."""

    x_q: np.ndarray  # int8 (B, T, D): quantized inputs (text: embedding rows of ids)
    ids: np.ndarray | None  # int (B, T) token ids of a text model, else None
    labels: np.ndarray | None  # int (B,) or (B, T) class labels of a classifier, else None
    x_float: np.ndarray | None  # float (B, T, D) normalized inputs of a classifier, else None
    description: str  # e.g. "test split, 40 sequences x 100 steps"
    # int (B,) true lengths: sequence b is steps 0..lengths[b]-1, padding after (None: all T)
    lengths: np.ndarray | None = None

    @property
    def sequences(self) -> int:
        return int(self.x_q.shape[0])

    @property
    def steps(self) -> int:
        return int(self.x_q.shape[1])

    def prefix(self, max_steps: int) -> tuple[VerifyInputs, tuple[slice, slice]]:
        """The first sequences (classification) or steps (one text stream) that hold at
        most ``max_steps`` sequence-steps (at least one step), and the (sequence, step)
        slices that cut the same part out of any (B, T, ...) output."""
        if self.sequences * self.steps <= max_steps:
            return self, (slice(None), slice(None))
        if self.ids is not None:
            n = max(1, max_steps // self.sequences)
            cut = (slice(None), slice(0, n))
            desc = f"first {n} of {self.steps} steps of the {self.description}"
        else:
            n = max(1, max_steps // self.steps)
            cut = (slice(0, n), slice(None))
            desc = f"first {n} sequences of the {self.description}"
        labels = None
        if self.labels is not None:
            labels = self.labels[cut] if self.labels.ndim == 2 else self.labels[cut[0]]
        lengths = None
        if self.lengths is not None:
            lengths = (np.minimum(self.lengths[cut[0]], n) if self.ids is not None
                       else self.lengths[cut[0]])
        return VerifyInputs(
            self.x_q[cut], None if self.ids is None else self.ids[cut], labels,
            None if self.x_float is None else self.x_float[cut], desc, lengths), cut


def load_verify_inputs(run_dir: Path, model: QuantizedModel, limit: int | None = None
                       ) -> VerifyInputs:
    """The run's held-out data, quantized with the model's input parameters.

    ``limit``: at most that many sequences (classification) or steps (text).
    """
    from elman.data.held_out import load_held_out

    held = load_held_out(run_dir, limit=limit)
    if held.task != model.task:
        raise ElmanError(f"{run_dir}: the data is for {held.task} but the model is {model.task}")
    if held.tokens:
        ids = held.inputs
        if ids.size == 0:
            raise ElmanError(f"{run_dir}: the validation stream is empty")
        if ids.max() >= model.vocab_size:
            raise ElmanError(f"{run_dir}: token id {ids.max()} outside the model's vocabulary "
                             f"of {model.vocab_size}")
        return VerifyInputs(embed_tokens(model, ids), ids, None, None, held.description)
    x = held.inputs
    if x.shape[0] == 0:
        raise ElmanError(f"{run_dir}: the test split is empty")
    if x.shape[2] != model.input_dim:
        raise ElmanError(f"{run_dir}: the data has {x.shape[2]} channels, the model "
                         f"{model.input_dim}")
    return VerifyInputs(model.input_quant.quantize(x), None, held.targets, x, held.description,
                        held.lengths)
