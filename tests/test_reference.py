"""The integer reference program, and every fast path against it, on random layered models.

``elman.runtime.reference`` computes the program plainly (int64, one step and one
operator at a time); the simulator's numpy engine, both loops of its numba engine
and (``test_codegen_random.py``) the generated C must equal it value for value:
1 to 3 stacked layers, sizes 1 to 300, heads at every step or the last or none,
both profiles, scales over several decades, zero points at the ends of int8.
"""

from __future__ import annotations

import numpy as np
import pytest
from elman.layers.random_model import random_model
from elman.profiles import PROFILE_NAMES
from elman.runtime.reference import reference_run
from engines import assert_same, every_variant
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
sizes = st.one_of(st.integers(1, 8), st.integers(9, 300), st.sampled_from([1, 2, 3, 127, 300]))


@pytest.mark.parametrize("profile", PROFILE_NAMES)
@SETTINGS
@given(input_dim=sizes, layer_units=st.lists(sizes, min_size=1, max_size=3),
       output_dim=st.one_of(st.just(0), sizes), every_step=st.booleans(),
       extreme=st.booleans(), seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 20),
       steps=st.integers(1, 30))
@example(input_dim=1, layer_units=[1, 1, 1], output_dim=1, every_step=False, extreme=True,
         seed=1, batch=1, steps=1)
@example(input_dim=300, layer_units=[300, 300], output_dim=300, every_step=True,
         extreme=False, seed=2, batch=17, steps=3)
@example(input_dim=7, layer_units=[33, 5, 64], output_dim=5, every_step=True, extreme=True,
         seed=3, batch=17, steps=30)
def test_every_engine_equals_the_reference(profile, input_dim, layer_units, output_dim,
                                           every_step, extreme, seed, batch, steps):
    model = random_model(input_dim, layer_units, output_dim, seed=seed, extreme=extreme,
                         every_step=every_step)
    x_q = np.random.default_rng(seed).integers(-128, 128, size=(batch, steps, input_dim),
                                               dtype=np.int8)
    expected = reference_run(model, profile, x_q)
    assert expected.h.shape == (batch, steps, sum(layer_units))
    for variant, out in every_variant(model, profile, x_q).items():
        assert_same(out, expected, f"{variant} vs reference")


def test_random_layered_models_are_lively_in_every_layer():
    """The properties mean something only if every layer's state varies."""
    for seed in range(4):
        model = random_model(5, (40, 24, 16), 3, seed=seed)
        x_q = np.random.default_rng(seed).integers(-128, 128, size=(2, 10, 5), dtype=np.int8)
        h = reference_run(model, "tflm", x_q).h
        for s in model.state_slices:
            assert len(np.unique(h[..., s])) > 8


def test_reference_refuses_bad_inputs():
    model = random_model(3, 4, 2, seed=0)
    with pytest.raises(ValueError, match="int8"):
        reference_run(model, "tflm", np.zeros((1, 2, 3), np.float32))
    with pytest.raises(ValueError, match="unknown arithmetic profile"):
        reference_run(model, "cmsis", np.zeros((1, 2, 3), np.int8))
