"""The compiled (numba) engine equals the numpy reference engine, value for value.

Random models built without TensorFlow (``random_model``): 1 to 3 layers of 1 to
300 units, scales over six decades, zero points at the ends of int8, extreme
biases, dead channels; both profiles; both compiled loops (``sequential`` and
``batched``); streaming; zero steps. ``test_reference.py`` holds every engine to
the plain integer reference program. The interpreters are compared with every engine in
``test_interpreters.py`` and on real data in ``test_verify.py``, where ``elman
verify`` also compares the engines.
"""

from __future__ import annotations

import numpy as np
import pytest
from elman.layers.elman.compiled import ElmanCompiled
from elman.layers.random_model import random_model
from elman.runtime import compiled
from elman.runtime.simulator import ENGINE_ENV, Simulator, resolve_engine
from engines import assert_same, every_variant, simulate
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=10, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
sizes = st.one_of(st.integers(1, 8), st.integers(9, 300), st.sampled_from([1, 2, 3, 127, 300]))


@pytest.mark.parametrize("profile", ["tflm", "tflite"])
@SETTINGS
@given(input_dim=sizes, layer_units=st.lists(sizes, min_size=1, max_size=3),
       output_dim=st.one_of(st.just(0), sizes), extreme=st.booleans(),
       seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 40), steps=st.integers(1, 140))
@example(input_dim=1, layer_units=[1], output_dim=1, extreme=True, seed=1, batch=1, steps=1)
@example(input_dim=300, layer_units=[300], output_dim=300, extreme=False, seed=2, batch=3,
         steps=4)
@example(input_dim=7, layer_units=[33, 8], output_dim=5, extreme=True, seed=3, batch=17,
         steps=70)
def test_numba_equals_numpy_on_random_models(profile, input_dim, layer_units, output_dim,
                                             extreme, seed, batch, steps):
    ir = random_model(input_dim, layer_units, output_dim, seed=seed, extreme=extreme)
    x_q = np.random.default_rng(seed).integers(-128, 128, size=(batch, steps, input_dim),
                                               dtype=np.int8)
    runs = every_variant(ir, profile, x_q)
    for variant, out in runs.items():
        assert_same(out, runs["numpy"], variant)


def test_random_irs_exercise_every_path_and_lively_states():
    """The property means something only if states vary, the batched loop runs, and
    ``tflm`` takes both its integer and its float64 requantization there."""
    lively = batched = 0
    as_float = set()
    for seed in range(8):
        ir = random_model(5, 40, 3, seed=seed, extreme=seed % 2 == 1)
        x_q = np.random.default_rng(seed).integers(-128, 128, size=(2, 8, 5), dtype=np.int8)
        runs = every_variant(ir, "tflm", x_q)
        lively += len(np.unique(runs["numpy"].h)) > 20
        batched += "numba/batched" in runs
        c = ElmanCompiled(ir.layers[0], "tflm")
        as_float.add(c.input_fc.tflm_float and c.recurrent_fc.tflm_float)
    assert lively >= 4 and batched == 8 and as_float == {True, False}


@pytest.mark.parametrize("profile", ["tflm", "tflite"])
def test_large_batch_takes_the_batched_loop_and_agrees(profile):
    ir = random_model(16, 64, 8, seed=5)
    x_q = np.random.default_rng(5).integers(-128, 128, size=(40, 50, 16), dtype=np.int8)
    sim = Simulator(ir, profile, engine="numba")
    layer = ElmanCompiled(ir.layers[0], profile)
    assert layer.loop_for(40) == "batched" and layer.loop_for(2) == "sequential"
    assert_same(sim.run(x_q), Simulator(ir, profile, engine="numpy").run(x_q))


def test_weights_beyond_float32_take_the_integer_loop():
    """1,100 inputs of weight 127 and inputs of 128 overflow float32's 2**24: the compiled
    engine then keeps int32 sums (and still equals numpy)."""
    ir = random_model(3, 1100, 2, seed=7)
    heavy = np.full_like(ir.layers[0].recurrent_fc.weights, 127)
    ir = _with_recurrent_weights(ir, heavy)
    assert compiled.max_abs_product(ir.layers[0].recurrent_fc) >= compiled.FLOAT32_EXACT
    sim = Simulator(ir, "tflm", engine="numba")
    layer = ElmanCompiled(ir.layers[0], "tflm")
    assert not sim.batched_exact and layer.loop_for(256) == "sequential"
    with pytest.raises(ValueError, match="float32"):
        layer.run(np.zeros((1, 1, 3), np.int8), np.zeros((1, 1100), np.int8), loop="batched")
    x_q = np.random.default_rng(7).integers(-128, 128, size=(20, 3, 3), dtype=np.int8)
    assert_same(sim.run(x_q), Simulator(ir, "tflm", engine="numpy").run(x_q))


def _with_recurrent_weights(ir, weights):
    import dataclasses

    layer = ir.layers[0]
    fc = dataclasses.replace(layer.recurrent_fc, weights=weights)
    return dataclasses.replace(ir, layers=(dataclasses.replace(layer, recurrent_fc=fc),))


@pytest.mark.parametrize("profile", ["tflm", "tflite"])
def test_streaming_steps_equal_the_numpy_run(profile):
    ir = random_model(4, (21, 6), 3, seed=9, extreme=True)
    x_q = np.random.default_rng(9).integers(-128, 128, size=(3, 15, 4), dtype=np.int8)
    whole = Simulator(ir, profile, engine="numpy").run(x_q)
    sim = Simulator(ir, profile, engine="numba")
    sim.reset(3)
    for t in range(15):
        h, y = sim.step(x_q[:, t])
        np.testing.assert_array_equal(h, whole.h[:, t])
        np.testing.assert_array_equal(y, whole.y[:, t])


@pytest.mark.parametrize("variant", ["numpy", "numba/sequential", "numba/batched"])
def test_zero_steps_give_empty_outputs(variant):
    ir = random_model(4, (8, 5), 3, seed=10)
    out = simulate(ir, "tflm", np.zeros((2, 0, 4), np.int8), variant)
    assert out.h.shape == (2, 0, 13) and out.y.shape == (2, 0, 3)


def test_engine_choice(monkeypatch):
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    assert resolve_engine("auto") == "numba"  # numba is a dependency
    assert resolve_engine("numpy") == "numpy"
    monkeypatch.setenv(ENGINE_ENV, "numpy")
    assert resolve_engine("auto") == "numpy" and resolve_engine("numba") == "numba"
    assert Simulator(random_model(2, 3, 1, seed=0)).engine == "numpy"
    monkeypatch.setenv(ENGINE_ENV, "fortran")
    with pytest.raises(ValueError, match=ENGINE_ENV):
        resolve_engine("auto")
    with pytest.raises(ValueError, match="unknown simulator engine"):
        resolve_engine("cuda")


def test_without_numba_auto_falls_back_and_numba_is_refused(monkeypatch):
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    monkeypatch.setattr("elman.runtime.simulator.numba_available", lambda: False)
    assert resolve_engine("auto") == "numpy"
    with pytest.raises(ValueError, match="pip install numba"):
        resolve_engine("numba")
