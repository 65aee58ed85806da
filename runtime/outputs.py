"""What every implementation of the integer program returns: int8 states and outputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StepOutputs:
    """int8 results of every step: ``h`` (B, T, S), the whole state after each step (every
    layer's h, in layer order: ``QuantizedModel.state_slices``), and ``y`` (B, T, O) or None."""

    h: np.ndarray
    y: np.ndarray | None

    @property
    def batch(self) -> int:
        return int(self.h.shape[0])

    @property
    def steps(self) -> int:
        return int(self.h.shape[1])
