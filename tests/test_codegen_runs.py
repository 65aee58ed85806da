"""The generated C on REAL trained models (BasicMotions, fortunes): bit-exact with the
simulator in both profiles, every step of every held-out sequence, every unit; and
`elman verify` reports the "generated C" pair."""

import numpy as np
import pytest
from elman.firmware_codegen.api import codegen_run
from elman.firmware_codegen.host import run_host_c, run_host_c_tokens
from elman.quantize.reader import read_ir
from elman.runtime.simulator import Simulator

from elman.verify import load_verify_inputs, verify_run


def _assert_same(c, sim):
    np.testing.assert_array_equal(c.h, sim.h)
    np.testing.assert_array_equal(c.y, sim.y)


@pytest.mark.parametrize("profile", ["tflm", "tflite"])
def test_basicmotions_c_is_bit_exact_on_the_test_split(bm_run, profile):
    ir = read_ir(bm_run / "model_int8.tflite")
    inputs = load_verify_inputs(bm_run, ir)
    assert inputs.sequences >= 40 and inputs.steps == 100  # the whole BasicMotions test split
    sim = Simulator(ir, profile).run(inputs.x_q)
    assert len(np.unique(sim.h)) > 50  # a real, non-degenerate state trajectory
    _assert_same(run_host_c(ir, inputs.x_q, profile=profile), sim)
    # classification usage: the head only on the last step, y = NULL before
    last = run_host_c(ir, inputs.x_q, profile=profile, head_on_last_step=True)
    np.testing.assert_array_equal(last.h, sim.h)
    np.testing.assert_array_equal(last.y[:, -1], sim.y[:, -1])


@pytest.mark.parametrize("profile", ["tflm", "tflite"])
def test_text_c_is_bit_exact_on_the_validation_stream(text_run, profile):
    ir = read_ir(text_run / "model_int8.tflite")
    inputs = load_verify_inputs(text_run, ir, limit=3000)
    ids = inputs.ids
    sim = Simulator(ir, profile).run_tokens(ids)
    _assert_same(run_host_c_tokens(ir, ids, profile=profile), sim)  # precomputed token table
    _assert_same(run_host_c(ir, inputs.x_q, profile=profile), sim)  # embedding rows as x


def test_verify_reports_the_generated_c_pair(bm_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(bm_run, run)
    report = verify_run(run, limit=3, progress=False, float_model=False)
    pairs = [p for p in report["pairs"] if p["b"].startswith("generated C")]
    assert sorted(p["profile"] for p in pairs) == ["tflite", "tflm"]
    for p in pairs:
        assert p["ok"] and p["mismatches"] == 0 and p["compared"] > 3 * 100 * ir_units(run)


def ir_units(run) -> int:
    return read_ir(run / "model_int8.tflite").state_bytes


def test_codegen_run_default_folder(text_run, tmp_path):
    paths = codegen_run(text_run, prefix="chars", out_dir=tmp_path)
    names = sorted(p.name for p in paths)
    assert names == ["chars_io.c", "chars_model.c", "chars_model.h", "chars_weights.h"]
    header = (tmp_path / "chars_model.h").read_text()
    assert "int chars_step_token(chars_state_t *state, uint16_t token, int8_t *y);" in header
