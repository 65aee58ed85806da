"""The Elman layer in the plain integer reference program (``elman.runtime.reference``).

One step, every operator separately with the profile's reference arithmetic on
int64 arrays: ``a = FC(in)``, ``r = FC(h)``, ``z = ADD(a, r)``, ``h' = TANH(z)``.
"""

from __future__ import annotations

import numpy as np
from elman.profiles.base import Profile
from elman.quantize.ir import ElmanLayer
from elman.runtime.reference import fully_connected


class ElmanReference:
    def __init__(self, layer: ElmanLayer, profile: Profile):
        self.layer = layer
        self.input_fc = profile.fully_connected(layer.input_fc)
        self.recurrent_fc = profile.fully_connected(layer.recurrent_fc)
        self.add = profile.add(layer.add)
        self.profile = profile

    def step(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        """The new int8 (int16) state (B, H) from inputs ``x`` (B, D) and states ``h``
        (B, H)."""
        a = fully_connected(self.layer.input_fc, self.input_fc, x)
        r = fully_connected(self.layer.recurrent_fc, self.recurrent_fc, h)
        z = self.add(a, r)
        return self.profile.tanh(z, self.layer.tanh.input)


Reference = ElmanReference
