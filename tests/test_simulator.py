"""The simulator's API: whole sequences, streaming, batches, tokens, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from elman.layers.random_model import random_model
from elman.profiles import PROFILE_NAMES as PROFILES
from elman.quantize.reader import read_ir
from elman.quantize.testing import random_step_tflite
from elman.runtime.outputs import StepOutputs
from elman.runtime.simulator import Simulator, embed_tokens


@pytest.fixture(scope="module", params=["converted", "stacked"])
def ir(request):
    """A one-layer model converted by TF, and a three-layer model built as IR."""
    if request.param == "converted":
        return read_ir(random_step_tflite(3, 16, 4, seed=38))  # as test_interpreters
    return random_model(3, (16, 9, 12), 4, seed=38)


@pytest.fixture(scope="module")
def text_ir():
    return read_ir(random_step_tflite(6, 24, 11, seed=37, task="language_model",
                                      vocab_size=11))


@pytest.fixture(params=["numpy", "numba"])
def engine(request):
    """Every API test runs on both simulator engines."""
    return request.param


def _inputs(ir, batch, steps, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, (batch, steps, ir.input_dim)).astype(np.int8)


@pytest.mark.parametrize("profile", PROFILES)
def test_run_equals_streaming_steps(ir, profile, engine):
    x = _inputs(ir, 5, 12)
    sim = Simulator(ir, profile, engine)
    out = sim.run(x)
    assert isinstance(out, StepOutputs)
    assert out.h.shape == (5, 12, ir.state_bytes) and out.h.dtype == np.int8
    assert out.y.shape == (5, 12, ir.output_dim) and out.y.dtype == np.int8
    sim.reset(batch=5)
    for t in range(12):
        h, y = sim.step(x[:, t])
        np.testing.assert_array_equal(h, out.h[:, t])
        np.testing.assert_array_equal(y, out.y[:, t])
    np.testing.assert_array_equal(sim.state, out.h[:, -1])


@pytest.mark.parametrize("profile", PROFILES)
def test_sequences_of_a_batch_are_independent(ir, profile, engine):
    x = _inputs(ir, 6, 9, seed=1)
    sim = Simulator(ir, profile, engine)
    whole = sim.run(x)
    for b in range(6):
        one = sim.run(x[b:b + 1])
        np.testing.assert_array_equal(one.h[0], whole.h[b])
        np.testing.assert_array_equal(one.y[0], whole.y[b])


def test_run_starts_from_zero_and_leaves_the_stream_alone(ir, engine):
    sim = Simulator(ir, engine=engine)
    x = _inputs(ir, 2, 4, seed=2)
    sim.reset(2)
    sim.step(x[:, 0])
    state = sim.state
    sim.run(x)
    np.testing.assert_array_equal(sim.state, state)
    sim.reset(2)
    np.testing.assert_array_equal(sim.state, np.zeros((2, ir.state_bytes), np.int8))


def test_profiles_differ_somewhere_but_agree_mostly(ir, engine):
    x = _inputs(ir, 16, 40, seed=3)
    a, b = Simulator(ir, "tflm", engine).run(x), Simulator(ir, "tflite", engine).run(x)
    same = np.mean(a.h == b.h)
    assert 0.3 < same < 1.0  # the same model, computed with two roundings


def test_run_tokens_is_the_embedding_lookup(text_ir, engine):
    ids = np.random.default_rng(4).integers(0, text_ir.vocab_size, (3, 15))
    sim = Simulator(text_ir, "tflm", engine)
    a = sim.run_tokens(ids)
    b = sim.run(text_ir.embedding[ids])
    np.testing.assert_array_equal(a.h, b.h)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(embed_tokens(text_ir, ids), text_ir.embedding[ids])


def test_model_without_head_has_no_outputs(engine):
    ir = read_ir(random_step_tflite(4, 13, 0, seed=34, x_range=1e3))  # as test_interpreters
    out = Simulator(ir, "tflite", engine).run(_inputs(ir, 2, 3))
    assert out.y is None and out.h.shape == (2, 3, 13)
    sim = Simulator(ir, engine=engine)
    sim.reset(1)
    h, y = sim.step(_inputs(ir, 1, 1)[:, 0])
    assert y is None and h.shape == (1, 13)


def test_bad_inputs_are_refused(ir, text_ir, engine):
    sim = Simulator(ir, engine=engine)
    with pytest.raises(ValueError, match="int8"):
        sim.run(np.zeros((1, 2, ir.input_dim), np.float32))
    with pytest.raises(ValueError, match="shape"):
        sim.run(np.zeros((1, 2, ir.input_dim + 1), np.int8))
    with pytest.raises(ValueError, match="batch"):
        sim.reset(2)
        sim.step(np.zeros((3, ir.input_dim), np.int8))
    with pytest.raises(ValueError, match="profile"):
        Simulator(ir, "cmsis", engine)
    with pytest.raises(ValueError, match="embedding"):
        sim.run_tokens(np.zeros((1, 2), np.int64))
    with pytest.raises(ValueError, match="token ids"):
        Simulator(text_ir, engine=engine).run_tokens(np.array([[0, text_ir.vocab_size]]))
    with pytest.raises(ValueError, match="loop"):
        Simulator(ir, engine=engine).run(np.zeros((1, 2, ir.input_dim), np.int8), loop="fast")


def test_state_holds_every_layer_in_order(engine):
    """The whole state is each layer's h in layer order; a layer's states equal a one-layer
    model's run on the layer below's states."""
    model = random_model(3, (7, 5), 2, seed=5)
    x = _inputs(model, 3, 6, seed=6)
    out = Simulator(model, "tflm", engine).run(x)
    first, second = model.state_slices
    alone = random_model(3, 7, 2, seed=5)  # same draws: the same first layer
    np.testing.assert_array_equal(Simulator(alone, "tflm", engine).run(x).h, out.h[..., first])
    assert out.h[..., second].shape == (3, 6, 5)


def test_step_outputs_are_frozen(ir, engine):
    out = Simulator(ir, engine=engine).run(_inputs(ir, 1, 2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.h = out.h  # type: ignore[misc]
    assert (out.batch, out.steps) == (1, 2)
