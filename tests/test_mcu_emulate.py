"""Generated C on emulated Cortex-M0+/M4 cores: bit-exact with the simulator, every step."""

from __future__ import annotations

import numpy as np
import pytest
from elman.firmware_codegen.arm.emulate import run_emulated, run_emulated_tokens
from elman.layers.random_model import random_model
from elman.runtime.simulator import Simulator

CPUS = ("cortex-m0plus", "cortex-m4")
PROFILES = ("tflm", "tflite")


def _inputs(ir, batch: int, steps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, (batch, steps, ir.input_dim), dtype=np.int8)


def _assert_same(run, expected) -> None:
    np.testing.assert_array_equal(run.outputs.h, expected.h)
    if expected.y is None:
        assert run.outputs.y is None
    else:
        np.testing.assert_array_equal(run.outputs.y, expected.y)


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("profile", PROFILES)
def test_emulated_step_is_bit_exact(cpu, profile):
    # odd sizes: rows and columns that are not multiples of 4 exercise every tail
    ir = random_model(5, 13, 3, seed=7)
    x = _inputs(ir, 3, 15, seed=1)
    run = run_emulated(ir, x, profile=profile, cpu=cpu, opt="O2")
    _assert_same(run, Simulator(ir, profile).run(x))
    assert run.instructions_min <= run.instructions_per_step <= run.instructions_max
    assert run.macs_per_step == ir.macs_per_step
    assert 0 < run.stack_bytes < 1024


@pytest.mark.parametrize("cpu", CPUS)
def test_extreme_quantization_and_no_head(cpu):
    ir = random_model(4, 8, 0, seed=3, extreme=True)
    x = _inputs(ir, 2, 12, seed=2)
    for profile in PROFILES:
        run = run_emulated(ir, x, profile=profile, cpu=cpu, opt="Os")
        _assert_same(run, Simulator(ir, profile).run(x))


def test_text_model_steps_on_tokens():
    ir = random_model(6, 16, 20, seed=5, vocab_size=20)
    ids = np.random.default_rng(0).integers(0, 20, (2, 12))
    run = run_emulated_tokens(ir, ids, profile="tflm", cpu="cortex-m4", opt="O2")
    _assert_same(run, Simulator(ir, "tflm").run_tokens(ids))


def test_instruction_counts_are_deterministic():
    ir = random_model(6, 16, 4, seed=11)
    x = _inputs(ir, 2, 6, seed=4)
    a = run_emulated(ir, x, cpu="cortex-m4", opt="O2")
    b = run_emulated(ir, x, cpu="cortex-m4", opt="O2")
    assert a.instructions_per_step == b.instructions_per_step
    assert a.by_function == b.by_function
    assert a.sizes == b.sizes
