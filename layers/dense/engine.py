"""The dense head in the simulator's numpy engine: ``y = FC(h')`` of every step at once."""

from __future__ import annotations

import numpy as np
from elman.profiles import get_profile
from elman.quantize.ir import DenseHead
from elman.runtime.fc_engine import FullyConnectedEngine


class DenseEngine:
    def __init__(self, head: DenseHead, profile: str):
        self.fc = FullyConnectedEngine(head.fc, get_profile(profile))
        self.output_dim = head.output_dim

    def apply(self, h: np.ndarray) -> np.ndarray:
        """int8 outputs (B, T, O) of int8 states (B, T, H)."""
        batch, steps, units = h.shape
        flat = h.reshape(batch * steps, units)
        y = self.fc.from_float32(flat.astype(np.float32)) if self.fc.magic is not None \
            else self.fc(flat)
        return y.reshape(batch, steps, self.output_dim)


Engine = DenseEngine
