"""Property: over random layered models the compiled C computes exactly what the simulator
computes, every step, every unit of every layer's state and of the head.

Models are built directly (``elman.layers.random_model``): 1 to 3 stacked layers of
sizes 1-300 including odd ones, heads at every step, at the last step or none,
random weights, scales spread over up to six decades, zero points at the ends of
int8, extreme biases, dead channels. Every example compiles the C (cached by
content), so the example counts stay small; ``test_reference.py`` proves the
simulator equal to the plain integer reference program on the same models.
"""

import numpy as np
import pytest
from elman.firmware_codegen.host import run_host_c, run_host_c_tokens
from elman.layers.random_model import random_model
from elman.runtime.simulator import Simulator
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=8, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
sizes = st.one_of(st.integers(1, 8), st.integers(9, 300), st.sampled_from([1, 2, 3, 127, 300]))


def _assert_same(c, sim, ir):
    np.testing.assert_array_equal(c.h, sim.h)
    if ir.head is None:
        assert c.y is None and sim.y is None
    else:
        np.testing.assert_array_equal(c.y, sim.y)


model_args = dict(
    input_dim=sizes, layer_units=st.lists(sizes, min_size=1, max_size=3),
    output_dim=st.one_of(st.just(0), sizes), every_step=st.booleans(), extreme=st.booleans(),
    seed=st.integers(0, 2**31 - 1), steps=st.integers(1, 12))


def _check_random_model(profile, input_dim, layer_units, output_dim, every_step, extreme, seed,
                        steps, batch=3):
    ir = random_model(input_dim, layer_units, output_dim, seed=seed, extreme=extreme,
                      every_step=every_step)
    x_q = np.random.default_rng(seed).integers(-128, 128, size=(batch, steps, input_dim),
                                               dtype=np.int8)
    _assert_same(run_host_c(ir, x_q, profile=profile), Simulator(ir, profile).run(x_q), ir)


@pytest.mark.parametrize("profile", ["tflm", "tflite"])
@SETTINGS
@given(**model_args)
@example(input_dim=1, layer_units=[1], output_dim=1, every_step=False, extreme=True, seed=1,
         steps=3)
@example(input_dim=300, layer_units=[300], output_dim=300, every_step=True, extreme=False,
         seed=2, steps=4)
@example(input_dim=5, layer_units=[300, 1, 300], output_dim=7, every_step=True, extreme=True,
         seed=3, steps=5)
def test_c_equals_simulator_on_random_models(profile, input_dim, layer_units, output_dim,
                                             every_step, extreme, seed, steps):
    _check_random_model(profile, input_dim, layer_units, output_dim, every_step, extreme, seed,
                        steps)


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["tflm", "tflite"])
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(**{**model_args, "steps": st.integers(1, 60)})
def test_c_equals_simulator_on_many_random_models(profile, input_dim, layer_units, output_dim,
                                                  every_step, extreme, seed, steps):
    """The property above over many more models (each compiled once) and longer streams."""
    _check_random_model(profile, input_dim, layer_units, output_dim, every_step, extreme, seed,
                        steps, batch=4)


@pytest.mark.parametrize("profile", ["tflm", "tflite"])
@SETTINGS
@given(vocab=st.integers(1, 300), input_dim=sizes, layer_units=st.lists(sizes, min_size=1,
                                                                          max_size=3),
       extreme=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_token_step_equals_simulator(profile, vocab, input_dim, layer_units, extreme, seed):
    ir = random_model(input_dim, layer_units, vocab, seed=seed, vocab_size=vocab,
                      extreme=extreme)
    ids = np.random.default_rng(seed).integers(0, vocab, size=(2, 10))
    _assert_same(run_host_c_tokens(ir, ids, profile=profile),
                 Simulator(ir, profile).run_tokens(ids), ir)


def test_random_irs_are_not_degenerate():
    """The property above means something only if the states actually vary."""
    lively = 0
    for seed in range(6):
        ir = random_model(5, 40, 3, seed=seed)
        x_q = np.random.default_rng(seed).integers(-128, 128, size=(2, 8, 5), dtype=np.int8)
        lively += len(np.unique(Simulator(ir, "tflm").run(x_q).h)) > 20
    assert lively >= 5


@pytest.mark.parametrize("layer_units", [23, (23, 9)])
def test_head_only_on_the_last_step(layer_units):
    """y = NULL skips the head without changing the state; the last step's y is exact."""
    ir = random_model(4, layer_units, 5, seed=11)
    x_q = np.random.default_rng(0).integers(-128, 128, size=(3, 9, 4), dtype=np.int8)
    sim = Simulator(ir, "tflm").run(x_q)
    c = run_host_c(ir, x_q, profile="tflm", head_on_last_step=True)
    np.testing.assert_array_equal(c.h, sim.h)
    np.testing.assert_array_equal(c.y[:, -1], sim.y[:, -1])
    assert not c.y[:, :-1].any()
