"""verify fails when the int8 state is far further from float than quantize measured."""

import json
import shutil

import pytest
from elman.quantize.reader import read_ir
from elman.runtime.float_expectation import FACTOR, check_hidden_error, expected_hidden_error
from typer.testing import CliRunner

from elman import rundir
from elman.cli import app
from elman.errors import VerificationError
from elman.verify import verify_run


@pytest.fixture
def bm_copy(bm_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(bm_run, run, ignore=shutil.ignore_patterns("c", "verify_report.json",
                                                               "mcu_report.json"))
    return run


def test_verify_compares_with_what_quantize_measured(bm_copy):
    report = verify_run(bm_copy, profiles=("tflm", "tflite"), limit=4, progress=False)
    check = report["state_error"]
    quant = json.loads((bm_copy / rundir.QUANT_REPORT).read_text())
    per_sequence = quant["evaluation"]["hidden_error"]["by_sequence"]["mean"]
    assert len(per_sequence) == 40
    assert check["expected"] == pytest.approx(sum(per_sequence[:4]) / 4, rel=1e-12)
    assert check["ok"] is True and check["bound"] == FACTOR * check["expected"]
    # the simulator of profile tflite is LiteRT bit for bit: the same error as quantize's
    assert check["measured"]["tflite"] == pytest.approx(check["expected"], rel=1e-3)
    assert check["measured"]["tflm"] == pytest.approx(check["expected"], rel=0.2)


def test_a_hand_edited_normalization_fails_verify(bm_copy):
    """Issue 12: the state error against float rose 20x and verify said nothing."""
    spec_path = bm_copy / rundir.DATA_SPEC
    spec = json.loads(spec_path.read_text())
    norm = spec["input"]["normalization"]
    norm["std"] = [s * 0.02 for s in norm["std"]]  # inputs 50x larger: saturated
    spec_path.write_text(json.dumps(spec))
    (bm_copy / "provenance.json").unlink()  # no ledger (a hand-made run): the numbers catch it
    result = CliRunner().invoke(app, ["verify", str(bm_copy), "--limit", "4", "--no-progress"])
    assert result.exit_code == 1, result.output
    errors = [s for s in result.output.splitlines() if s.startswith("error:")]
    assert len(errors) == 1 and "as far from the float model as quantize measured" in errors[0]
    assert "FAR ABOVE" in result.output
    report = json.loads((bm_copy / rundir.VERIFY_REPORT).read_text())
    assert report["ok"] is True  # still bit-exact: every implementation ran the same inputs
    assert report["state_error"]["ok"] is False
    check = report["state_error"]
    assert min(check["measured"].values()) > FACTOR * check["expected"]
    with pytest.raises(VerificationError, match="changed after `elman quantize`"):
        verify_run(bm_copy, profiles=("tflm",), limit=4, progress=False)


def test_no_expectation_without_the_model_s_own_quant_report(bm_copy):
    ir = read_ir(bm_copy / rundir.MODEL_TFLITE)
    quant = json.loads((bm_copy / rundir.QUANT_REPORT).read_text())
    quant["model"]["sha256"] = "0" * 64
    (bm_copy / rundir.QUANT_REPORT).write_text(json.dumps(quant))
    expectation = expected_hidden_error(bm_copy, ir, 4)
    assert expectation["expected"] is None and "another model" in expectation["note"]
    floats = [{"profile": "tflm", "metrics": {"hidden_abs_error_mean": 0.5}}]
    assert check_hidden_error(floats, expectation)["ok"] is None
    (bm_copy / rundir.QUANT_REPORT).unlink()
    assert expected_hidden_error(bm_copy, ir, 4)["expected"] is None


def test_the_bound_s_floor_is_half_an_lsb_of_the_state_width():
    """An int16 state 8x as far from float as quantize measured fails even where the int8
    floor (half of 1/128) would have hidden it; the int8 floor still holds for int8."""
    expectation = {"expected": 2e-4, "note": "quantize"}
    floats = [{"profile": "tflm", "metrics": {"hidden_abs_error_mean": 1.6e-3}}]
    int16 = check_hidden_error(floats, expectation, state_scale=1 / 32768)
    assert int16["ok"] is False and int16["bound"] == pytest.approx(6e-4)
    int8 = check_hidden_error(floats, expectation, state_scale=1 / 128)
    assert int8["ok"] is True and int8["bound"] == 1 / 256
    tiny = check_hidden_error(floats, {"expected": 1e-6, "note": "quantize"},
                              state_scale=1 / 32768)
    assert tiny["bound"] == 1 / 65536 and tiny["ok"] is False
