"""The dense head in the simulator's numba engine: ``y = FC(h')`` of every step at once,
in one float32 BLAS product (exact where ``CompiledFC.blas_exact``) and one compiled
requantization, else in int32 sums."""

from __future__ import annotations

import numpy as np
from elman.profiles import get_profile
from elman.quantize.ir import DenseHead
from elman.runtime.compiled import CompiledFC, kernels
from elman.runtime.compiled16 import CompiledFC16
from elman.runtime.compiled16 import kernels as kernels16


class DenseCompiled:
    def __init__(self, head: DenseHead, profile: str):
        arithmetic = get_profile(profile)
        self.fc16 = CompiledFC16.of(head.fc, arithmetic) if head.fc.input.bits == 16 else None
        self.fc = None if self.fc16 else CompiledFC.of(head.fc,
                                                       arithmetic.fully_connected(head.fc))
        self.output_dim = head.output_dim

    def apply(self, h: np.ndarray) -> np.ndarray:
        """int8 outputs (B, T, O) of int8 states (B, T, H) (int16 of int16, 16x8)."""
        batch, steps, units = h.shape
        if self.fc16 is not None:
            flat = np.ascontiguousarray(h.reshape(batch * steps, units), dtype=np.int16)
            y = np.empty((batch * steps, self.output_dim), dtype=np.int16)
            kernels16().fully_connected16_rows(flat, *self.fc16.args(), y)
            return y.reshape(batch, steps, self.output_dim)
        flat = np.ascontiguousarray(h.reshape(batch * steps, units), dtype=np.int8)
        y = np.empty((batch * steps, self.output_dim), dtype=np.int8)
        k = kernels()
        if self.fc.blas_exact:
            acc = self.fc.centred32(flat) @ self.fc.weights_t
            params_f, params_i, mode = self.fc.packed()
            k.requantize_rows(np.ascontiguousarray(acc), params_f, params_i,
                              self.fc.output_zero_point, mode, y)
        else:
            k.fully_connected_rows(flat, *self.fc.args(), self.fc.tflm, y)
        return y.reshape(batch, steps, self.output_dim)


Compiled = DenseCompiled
