"""Bit-exactness of the simulator against the real interpreters, on random-weight models.

Profile ``tflite`` against LiteRT ``BUILTIN_REF``, profile ``tflm`` against the
TFLite Micro interpreter: every step of every sequence, every unit of ``h`` and
``y``. Awkward sizes, extreme calibration ranges, saturating weights, a text
model, and models whose scales are edited so that exact rounding ties occur
often (the one place where the two roundings are told apart).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from elman.profiles import get_profile
from elman.profiles.primitives import (
    multiply_by_quantized_multiplier_single,
    multiply_by_quantized_multiplier_smaller_than_one,
)
from elman.quantize.integrity import seal
from elman.quantize.reader import read_ir
from elman.quantize.testing import random_step_tflite
from elman.runtime.compare import compare_outputs
from elman.runtime.interpreters import (
    run_litert,
    run_litert_tokens,
    run_tflm,
    run_tflm_tokens,
)
from elman.runtime.reference import reference_run
from elman.runtime.simulator import Simulator
from engines import every_variant
from stacked_tflite import stacked_step_tflite

RUNNERS = {"tflite": run_litert, "tflm": run_tflm}

# (input_dim, units, output_dim, seed, x_range, weight_scale, sequences, steps)
MODELS = {
    "typical": (3, 16, 4, 38, 1.0, 1.0, 8, 30),
    "one-unit": (1, 1, 1, 32, 1.0, 1.0, 8, 30),
    "odd-tiny-range": (5, 7, 3, 33, 1e-3, 1.0, 8, 25),
    "huge-range-no-head": (4, 13, 0, 34, 1e3, 1.0, 8, 25),
    "saturating": (2, 9, 3, 35, 1.0, 4.0, 6, 25),
    "300-units": (3, 300, 2, 36, 1.0, 1.0, 2, 4),
}


def _inputs(ir, sequences, steps, x_range, seed):
    rng = np.random.default_rng(seed)
    # 1.2 x the calibration range: some inputs saturate at -128 / 127
    return ir.input_quant.quantize(rng.uniform(-1.2, 1.2, (sequences, steps, ir.input_dim))
                                   * x_range)


def assert_bit_exact(a, b, what=""):
    np.testing.assert_array_equal(a.h, b.h, err_msg=what)
    if a.y is None:
        assert b.y is None
    else:
        np.testing.assert_array_equal(a.y, b.y, err_msg=what)


def assert_every_engine_exact(ir, profile, x, reference):
    """Each simulator engine and loop (``engines.VARIANTS``) equals the interpreter."""
    runs = every_variant(ir, profile, x)
    assert "numba/batched" in runs or max(ir.layer_units) >= 300
    for variant, out in runs.items():
        assert_bit_exact(out, reference, f"simulator {variant} ({profile})")


@pytest.mark.parametrize("name", list(MODELS))
def test_simulator_equals_interpreter(name):
    d, h, o, seed, x_range, weight_scale, sequences, steps = MODELS[name]
    model = random_step_tflite(d, h, o, seed=seed, x_range=x_range, weight_scale=weight_scale)
    ir = read_ir(model)
    x = _inputs(ir, sequences, steps, x_range, seed)
    for profile, run in RUNNERS.items():
        assert_every_engine_exact(ir, profile, x, run(model, ir, x))


@pytest.mark.parametrize("layer_units", [(7, 5), (4, 9, 6)])
def test_stacked_models_equal_both_interpreters(layer_units):
    """L-layer step models converted by TF: every layer's state (fed back through its own
    state input, found by structure) and the head, every step, in every engine."""
    model = stacked_step_tflite(3, layer_units, 4, seed=len(layer_units), head_steps="every")
    ir = read_ir(model)
    x = _inputs(ir, 8, 30, 1.0, seed=len(layer_units))
    for profile, run in RUNNERS.items():
        expected = run(model, ir, x)
        assert expected.h.shape == (8, 30, sum(layer_units))
        assert_every_engine_exact(ir, profile, x, expected)
        assert_bit_exact(reference_run(ir, profile, x), expected, f"reference ({profile})")
        for s in ir.state_slices:  # every layer is alive
            assert len(np.unique(expected.h[..., s])) > 5


def test_text_model_from_token_ids():
    model = random_step_tflite(6, 24, 11, seed=37, task="language_model", vocab_size=11)
    ir = read_ir(model)
    ids = np.random.default_rng(0).integers(0, 11, (2, 60))
    litert, tflm = run_litert_tokens(model, ir, ids), run_tflm_tokens(model, ir, ids)
    for engine in ("numpy", "numba"):
        assert_bit_exact(Simulator(ir, "tflite", engine).run_tokens(ids), litert, engine)
        assert_bit_exact(Simulator(ir, "tflm", engine).run_tokens(ids), tflm, engine)


# ---- models with frequent exact ties --------------------------------------------------


def _patch_floats(model: bytes, old, new) -> bytes:
    """Replace the one occurrence of the float32 array ``old`` in the file by ``new``."""
    old_b = np.asarray(old, np.float32).tobytes()
    new_b = np.asarray(new, np.float32).tobytes()
    assert model.count(old_b) == 1, "the scale bytes must occur exactly once"
    i = model.find(old_b)
    return model[:i] + new_b + model[i + len(old_b):]


def _near_dyadic_mantissas(seed: int) -> tuple[int, int, int]:
    """24-bit A, B, C with A * B = C * 2**24 - eps, 0 < eps < 2**14: A * B / C is a power
    of two times (1 - delta), delta ~ 2**-35 (below a 31-bit multiplier's resolution)."""
    rng = np.random.default_rng(seed)
    while True:
        a, b = (int(v) for v in rng.integers(1 << 23, 1 << 24, 2))
        eps = (-(a * b)) % (1 << 24)
        if 0 < eps < (1 << 14):
            return a, b, (a * b + eps) >> 24


def _near(mantissa: int, target: float) -> np.float32:
    return np.float32(mantissa * 2.0 ** round(np.log2(target / mantissa)))


@functools.cache
def _tie_models() -> dict[str, bytes]:
    base = random_step_tflite(3, 16, 4, seed=38)  # the "typical" model
    ir = read_ir(base)
    (layer,) = ir.layers
    rec = layer.recurrent_fc
    units = layer.units
    # W_h scales = s_out / 8: the recurrent multiplier is exactly 2**-10, so every
    # accumulator = 512 (mod 1024) is an exact tie.
    fc_ties = _patch_floats(base, rec.weight_scales,
                            np.full(units, np.float32(rec.output.scale) / 8, np.float32))
    # ADD input2 scale = max / 2: scaled inputs are exact and the sum's last rounding
    # is a tie whenever the recurrent value is odd.
    add = layer.add
    half = np.float32(max(add.input1.scale, add.input2.scale)) / 2
    add_ties = _patch_floats(base, [np.float32(add.input2.scale)], [half])
    # Input FC scales with s_in * s_w / s_out = 2**-3 * (1 - delta): the quantized multiplier
    # is exactly 2**-3 (exact ties, rounded away), LiteRT's double product sits just below
    # them (rounded toward zero).
    fc = layer.input_fc
    a, b, c = _near_dyadic_mantissas(1)
    s_in, s_out = _near(a, fc.input.scale), _near(c, fc.output.scale)
    s_w = _near(b, 2.0**-3 * float(s_out) / float(s_in))
    old_bias = (np.float64(fc.input.scale) * fc.weight_scales.astype(np.float64)).astype(np.float32)
    fc_near = _patch_floats(base, fc.weight_scales, np.full(units, s_w, np.float32))
    fc_near = _patch_floats(fc_near, old_bias,
                            np.full(units, np.float32(float(s_in) * float(s_w)), np.float32))
    fc_near = _patch_floats(fc_near, [np.float32(fc.input.scale)], [s_in])
    fc_near = _patch_floats(fc_near, [np.float32(fc.output.scale)], [s_out])
    # ADD with s_r = s_a / 2 * (1 - 2**-24) and s_out = s_a: every odd r lands just below a
    # half-integer; double rounding (SRDHM, then RoundingDivideByPOT) keeps it a tie.
    s_a = np.float32(add.input1.scale)
    add_near = _patch_floats(base, [np.float32(add.input2.scale)],
                             [np.float32(float(s_a) * 0.5 * (1 - 2.0**-24))])
    add_near = _patch_floats(add_near, [np.float32(add.output.scale)], [s_a])
    # edited scales: a new model, so it gets its own checksum (the stale one is refused)
    return {name: seal(model) for name, model in (
        ("fc-ties", fc_ties), ("add-ties", add_ties), ("fc-near-ties", fc_near),
        ("add-near-ties", add_near))}


@pytest.mark.parametrize("which", ["fc-ties", "add-ties", "fc-near-ties", "add-near-ties"])
def test_rounding_ties_are_reproduced(which):
    model = _tie_models()[which]
    ir = read_ir(model)
    x = _inputs(ir, 20, 30, 1.0, seed=5)
    litert, tflm = run_litert(model, ir, x), run_tflm(model, ir, x)
    # the two interpreters disagree here: the test can tell the roundings apart
    assert not compare_outputs("LiteRT", "TFLM", litert, tflm).ok
    assert_every_engine_exact(ir, "tflite", x, litert)
    assert_every_engine_exact(ir, "tflm", x, tflm)
    if which == "fc-ties":
        h_prev = np.concatenate([np.zeros_like(litert.h[:, :1]), litert.h[:, :-1]], axis=1)
        acc = h_prev.astype(np.int64) @ ir.layers[0].recurrent_fc.weights.astype(np.int64).T
        assert np.count_nonzero(acc[acc < 0] % 1024 == 512) > 0  # negative ties happened
    if which == "fc-near-ties":
        # LiteRT uses the double scale, not the multiplier: ignoring that here must fail
        tflite = get_profile("tflite")
        fc = ir.layers[0].input_fc
        req = tflite.fully_connected(fc)
        assert req.multipliers[0] == 1 << 30 and req.scales[0] != 0.125
        acc = (x.reshape(-1, ir.input_dim).astype(np.int64) - fc.input.zero_point) \
            @ fc.weights.astype(np.int64).T + fc.bias
        a_double = req(acc)
        a_multiplier = tflite.requantize(acc, req.multipliers, req.shifts, fc.output.zero_point)
        assert np.count_nonzero(a_double != a_multiplier) > 0
    if which == "add-near-ties":
        # a single rounding of the same multipliers would disagree with LiteRT here
        add = get_profile("tflite").add(ir.layers[0].add)
        q = np.arange(-128, 128)
        single = [multiply_by_quantized_multiplier_single((q - add.input2_zero_point) << 20,
                                                          *add.input2_multiplier)]
        double = [multiply_by_quantized_multiplier_smaller_than_one(
            (q - add.input2_zero_point) << 20, *add.input2_multiplier)]
        assert np.count_nonzero(single[0] != double[0]) > 0


def test_unequal_lengths_step_only_the_real_samples():
    """With lengths, each interpreter steps a sequence's real samples only (what verify
    compares): the same values there, zeros after (the padding was not stepped)."""
    model = random_step_tflite(3, 16, 4, seed=38)
    ir = read_ir(model)
    x = _inputs(ir, 6, 20, 1.0, seed=38)
    lengths = np.array([20, 1, 7, 13, 20, 2])
    real = np.arange(20)[None, :] < lengths[:, None]
    for profile, run in RUNNERS.items():
        full = run(model, ir, x)
        cut = run(model, ir, x, lengths=lengths)
        np.testing.assert_array_equal(cut.h[real], full.h[real], err_msg=profile)
        np.testing.assert_array_equal(cut.y[real], full.y[real], err_msg=profile)
        assert not cut.h[~real].any() and not cut.y[~real].any()
        assert cut.h[real].any()
