"""Every way the simulator can compute a run, for tests that check each of them.

``numpy`` is the reference engine; ``numba`` has two loops (``sequential`` for a
few sequences, ``batched`` with float32 BLAS products for many), chosen by batch
size in normal use and forced here so that both are always exercised.
"""

from __future__ import annotations

import numpy as np
from elman.runtime.outputs import StepOutputs
from elman.runtime.simulator import Simulator

VARIANTS = ("numpy", "numba/sequential", "numba/batched")


def simulate(model, profile: str, x_q: np.ndarray, variant: str) -> StepOutputs:
    """``Simulator(model, profile).run(x_q)`` with the engine (and loop) of ``variant``."""
    engine, _, loop = variant.partition("/")
    sim = Simulator(model, profile, engine=engine)
    if loop == "batched":
        assert sim.batched_exact, "this model's products exceed float32's exact range"
    return sim.run(x_q, loop=loop or None)


def every_variant(model, profile: str, x_q: np.ndarray) -> dict[str, StepOutputs]:
    """The run of every variant (``numba/batched`` only where float32 is exact)."""
    sims = {engine: Simulator(model, profile, engine=engine) for engine in ("numpy", "numba")}
    out = {}
    for variant in VARIANTS:
        engine, _, loop = variant.partition("/")
        if loop == "batched" and not sims[engine].batched_exact:
            continue
        out[variant] = sims[engine].run(x_q, loop=loop or None)
    return out


def assert_same(a: StepOutputs, b: StepOutputs, what: str = "") -> None:
    """Bit-exact: every step of every sequence, every unit of h and y."""
    np.testing.assert_array_equal(a.h, b.h, err_msg=f"h {what}")
    if a.y is None or b.y is None:
        assert a.y is None and b.y is None, f"y present in only one {what}"
    else:
        np.testing.assert_array_equal(a.y, b.y, err_msg=f"y {what}")
