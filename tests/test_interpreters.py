"""Bit-exactness of the simulator against the real interpreters, on random-weight models.

Profile ``tflite`` against LiteRT ``BUILTIN_REF``, profile ``tflm`` against the
TFLite Micro interpreter: every step of every sequence, every unit of ``h`` and
``y``. Awkward sizes, extreme calibration ranges, saturating weights, a text
model, and models whose scales are edited so that exact rounding ties occur
often (the one place where the two roundings are told apart).
"""

from __future__ import annotations

import numpy as np
import pytest
from elman.quantize.reader import read_ir
from elman.quantize.testing import random_step_tflite
from elman.runtime.compare import compare_outputs
from elman.runtime.interpreters import (
    run_litert,
    run_litert_tokens,
    run_tflm,
    run_tflm_tokens,
)
from elman.runtime.simulator import Simulator

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


def assert_bit_exact(a, b):
    np.testing.assert_array_equal(a.h, b.h)
    if a.y is None:
        assert b.y is None
    else:
        np.testing.assert_array_equal(a.y, b.y)


@pytest.mark.parametrize("name", list(MODELS))
def test_simulator_equals_interpreter(name):
    d, h, o, seed, x_range, weight_scale, sequences, steps = MODELS[name]
    model = random_step_tflite(d, h, o, seed=seed, x_range=x_range, weight_scale=weight_scale)
    ir = read_ir(model)
    x = _inputs(ir, sequences, steps, x_range, seed)
    for profile, run in RUNNERS.items():
        assert_bit_exact(Simulator(ir, profile).run(x), run(model, ir, x))


def test_text_model_from_token_ids():
    model = random_step_tflite(6, 24, 11, seed=37, task="language_model", vocab_size=11)
    ir = read_ir(model)
    ids = np.random.default_rng(0).integers(0, 11, (2, 60))
    assert_bit_exact(Simulator(ir, "tflite").run_tokens(ids), run_litert_tokens(model, ir, ids))
    assert_bit_exact(Simulator(ir, "tflm").run_tokens(ids), run_tflm_tokens(model, ir, ids))


# ---- models with frequent exact ties --------------------------------------------------


def _patch_floats(model: bytes, old, new) -> bytes:
    """Replace the one occurrence of the float32 array ``old`` in the file by ``new``."""
    old_b = np.asarray(old, np.float32).tobytes()
    new_b = np.asarray(new, np.float32).tobytes()
    assert model.count(old_b) == 1, "the scale bytes must occur exactly once"
    i = model.find(old_b)
    return model[:i] + new_b + model[i + len(old_b):]


def _tie_models() -> dict[str, bytes]:
    base = random_step_tflite(3, 16, 4, seed=38)  # the "typical" model
    ir = read_ir(base)
    rec = ir.recurrent_fc
    # W_h scales = s_out / 8: the recurrent multiplier is exactly 2**-10, so every
    # accumulator = 512 (mod 1024) is an exact tie.
    fc_ties = _patch_floats(base, rec.weight_scales,
                            np.full(ir.units, np.float32(rec.output.scale) / 8, np.float32))
    # ADD input2 scale = max / 2: scaled inputs are exact and the sum's last rounding
    # is a tie whenever the recurrent value is odd.
    add = ir.add
    half = np.float32(max(add.input1.scale, add.input2.scale)) / 2
    add_ties = _patch_floats(base, [np.float32(add.input2.scale)], [half])
    return {"fc-ties": fc_ties, "add-ties": add_ties}


@pytest.mark.parametrize("which", ["fc-ties", "add-ties"])
def test_rounding_ties_are_reproduced(which):
    model = _tie_models()[which]
    ir = read_ir(model)
    x = _inputs(ir, 20, 30, 1.0, seed=5)
    litert, tflm = run_litert(model, ir, x), run_tflm(model, ir, x)
    # the two interpreters disagree here: the test can tell the roundings apart
    assert not compare_outputs("LiteRT", "TFLM", litert, tflm).ok
    assert_bit_exact(Simulator(ir, "tflite").run(x), litert)
    assert_bit_exact(Simulator(ir, "tflm").run(x), tflm)
    if which == "fc-ties":
        h_prev = np.concatenate([np.zeros_like(litert.h[:, :1]), litert.h[:, :-1]], axis=1)
        acc = h_prev.astype(np.int64) @ ir.recurrent_fc.weights.astype(np.int64).T
        assert np.count_nonzero(acc[acc < 0] % 1024 == 512) > 0  # negative ties happened
