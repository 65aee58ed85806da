"""The dense head in the plain integer reference program: ``y = FC(h')``."""

from __future__ import annotations

import numpy as np
from elman.profiles.base import Profile
from elman.quantize.ir import DenseHead
from elman.runtime.reference import fully_connected


class DenseReference:
    def __init__(self, head: DenseHead, profile: Profile):
        self.head = head
        self.requantization = profile.fully_connected(head.fc)

    def apply(self, h: np.ndarray) -> np.ndarray:
        """int8 outputs (..., O) of int8 states (..., H)."""
        return fully_connected(self.head.fc, self.requantization, h)


Reference = DenseReference
