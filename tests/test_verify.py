"""`elman verify` on runs trained and quantized on REAL data (BasicMotions, fortunes)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from elman.firmware_codegen.arm.emulate import VERIFY_CPUS
from elman.quantize.reader import read_ir
from elman.runtime.interpreters import run_litert, run_tflm
from elman.runtime.simulator import ENGINE_ENV, Simulator
from engines import VARIANTS, assert_same, every_variant
from stacked_tflite import stacked_step_tflite
from typer.testing import CliRunner

from elman import verify as V
from elman.cli import app
from elman.errors import ElmanError, VerificationError


@pytest.fixture
def bm_copy(bm_run, tmp_path):
    return shutil.copytree(bm_run, tmp_path / "bm")


@pytest.fixture
def text_copy(text_run, tmp_path):
    return shutil.copytree(text_run, tmp_path / "text")


def test_simulator_is_bit_exact_on_real_basicmotions(bm_run):
    model = (bm_run / "model_int8.tflite").read_bytes()
    ir = read_ir(model)
    inputs = V.load_verify_inputs(bm_run, ir)
    assert inputs.x_q.shape == (40, 100, 6)
    for profile, run in (("tflite", run_litert), ("tflm", run_tflm)):
        ref = run(model, ir, inputs.x_q)
        runs = every_variant(ir, profile, inputs.x_q)
        assert set(runs) == set(VARIANTS)  # the compiled engine's two loops and numpy
        for variant, sim in runs.items():
            assert_same(sim, ref, f"{variant} ({profile})")


def test_simulator_is_bit_exact_on_a_real_text_stream(text_run):
    model = (text_run / "model_int8.tflite").read_bytes()
    ir = read_ir(model)
    inputs = V.load_verify_inputs(text_run, ir)
    assert inputs.ids.shape == (1, 2222)
    for profile, run in (("tflite", run_litert), ("tflm", run_tflm)):
        ref = run(model, ir, inputs.x_q)
        for engine in ("numpy", "numba"):
            assert_same(Simulator(ir, profile, engine).run_tokens(inputs.ids), ref, engine)


def test_verify_run_writes_a_clean_report(bm_copy):
    # 4 of the 40 test sequences: every registered pair runs (also the emulated Cortex-M)
    report = V.verify_run(bm_copy, limit=4, progress=False)
    on_disk = json.loads((bm_copy / "verify_report.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    assert report["ok"] is True
    pairs = {(p["a"], p["b"]): p for p in report["pairs"]}
    assert report["simulator_engine"] == "numba"
    # the time of each pair (what `elman verify` spends where), the emulated cores included
    # 2 interpreters, 2 engines, 2 host C, every registered core for both profiles
    assert len(pairs) == 6 + 2 * len(VERIFY_CPUS)
    assert sum("emulated" in b for _, b in pairs) == 2 * len(VERIFY_CPUS)
    uno = [p for p in report["pairs"] if p["b"] == "emulated ATmega328P (Arduino Uno) "
           "(avr-gcc -O2)"]  # the Uno in simavr: the 16-unit model fits
    assert len(uno) == 2 and all(p["compared"] > 0 and p["mismatches"] == 0 for p in uno)
    for p in report["pairs"]:
        assert isinstance(p["seconds"], float) and 0.0 <= p["seconds"] < 600, p
    table = V.format_table(report).splitlines()
    assert "seconds" in table[1]
    row = next(r for r in table if r.startswith("simulator (tflm) vs TFLite Micro"))
    assert f"{pairs[('simulator (tflm)', 'TFLite Micro')]['seconds']:.1f}" in row
    for a, b in (("simulator (tflm)", "TFLite Micro"),
                 ("simulator (tflite)", "LiteRT BUILTIN_REF"),
                 ("simulator (tflm)", "simulator, numpy engine (tflm)"),
                 ("simulator (tflite)", "simulator, numpy engine (tflite)")):
        p = pairs[(a, b)]
        assert p["compared"] == 4 * 100 * (16 + 4)
        assert p["compared_hidden"] == 4 * 100 * 16
        assert (p["mismatches"], p["max_abs_diff_lsb"], p["first_mismatch"]) == (0, 0, None)
    floats = {f["profile"]: f["metrics"] for f in report["float_vs_int8"]}
    model = (bm_copy / "model_int8.tflite").read_bytes()
    ir = read_ir(model)
    inputs = V.load_verify_inputs(bm_copy, ir, limit=4)
    for profile, m in floats.items():
        assert 0.0 <= m["float_accuracy"] <= 1.0
        y = Simulator(ir, profile).run(inputs.x_q).y
        assert m["int8_accuracy"] == np.mean(y[:, -1].argmax(-1) == inputs.labels)
        assert m["hidden_abs_error_mean"] < 0.1  # int8 tracks the float recurrence
    assert floats["tflm"]["float_accuracy"] == floats["tflite"]["float_accuracy"]


def test_verify_run_on_text_reports_perplexity(text_copy):
    report = V.verify_run(text_copy, profiles=("tflm",), limit=500, progress=False)
    assert report["ok"] and report["data"]["steps"] == 500
    assert {p["profile"] for p in report["pairs"]} == {"tflm"}
    (f,) = report["float_vs_int8"]
    m = f["metrics"]
    assert 1.0 < m["float_perplexity"] < 150 and 1.0 < m["int8_perplexity"] < 150


def test_a_mismatch_is_reported_and_raises(bm_copy, monkeypatch):
    # TFLite Micro checked against the *tflite* profile: a real disagreement
    def tflm_as_tflite(ctx):
        return [V.Implementation("TFLite Micro", "tflite",
                                 lambda inputs: run_tflm(ctx.model, ctx.ir, inputs.x_q))]

    monkeypatch.setattr(V.implementations, "IMPLEMENTATIONS", [tflm_as_tflite])
    with pytest.raises(VerificationError, match="first at sequence"):
        V.verify_run(bm_copy, profiles=("tflite",), progress=False, float_model=False)
    report = json.loads((bm_copy / "verify_report.json").read_text())
    assert report["ok"] is False
    (pair,) = report["pairs"]
    model = (bm_copy / "model_int8.tflite").read_bytes()
    ir = read_ir(model)
    x = V.load_verify_inputs(bm_copy, ir).x_q
    sim, tflm = Simulator(ir, "tflite").run(x), run_tflm(model, ir, x)
    assert pair["mismatches"] == int(np.count_nonzero(sim.h != tflm.h)
                                     + np.count_nonzero(sim.y != tflm.y))
    first = pair["first_mismatch"]
    seq, step, unit = first["sequence"], first["step"], first["unit"]
    got = (sim.h if first["kind"] == "h" else sim.y)[seq, step, unit]
    want = (tflm.h if first["kind"] == "h" else tflm.y)[seq, step, unit]
    assert (first["a"], first["b"]) == (got, want) and got != want
    assert not (sim.h[:, :step] != tflm.h[:, :step]).any()  # nothing earlier differs
    assert not (sim.y[:, :step] != tflm.y[:, :step]).any()


def test_cli_prints_the_table(bm_copy):
    result = CliRunner().invoke(app, ["verify", str(bm_copy), "--profile", "tflm",
                                      "--limit", "3", "--no-float", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "simulator (tflm) vs TFLite Micro" in result.output
    assert "3 sequences x 100 steps" in result.output
    assert "bit-exact: yes" in result.output
    assert "LiteRT" not in result.output


def test_cli_refuses_bad_input(tmp_path, bm_copy):
    runner = CliRunner()
    result = runner.invoke(app, ["verify", str(bm_copy), "--profile", "cmsis"])
    assert result.exit_code == 1 and "--profile must be one of" in result.output
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["verify", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "elman quantize" in result.output
    assert not (tmp_path / "empty" / "verify_report.json").exists()
    with pytest.raises(ElmanError, match="limit"):
        V.verify_run(bm_copy, limit=0, progress=False)


def test_cli_exits_non_zero_on_a_mismatch(bm_copy, monkeypatch):
    def tflm_as_tflite(ctx):
        return [V.Implementation("TFLite Micro", "tflite",
                                 lambda inputs: run_tflm(ctx.model, ctx.ir, inputs.x_q))]

    monkeypatch.setattr(V.implementations, "IMPLEMENTATIONS", [tflm_as_tflite])
    result = CliRunner().invoke(app, ["verify", str(bm_copy), "--profile", "tflite",
                                      "--no-float", "--no-progress"])
    assert result.exit_code == 1
    assert "simulator (tflite) vs TFLite Micro" in result.output  # the table came first
    assert "bit-exact: NO" in result.output
    assert "error: not bit-exact" in result.output
    assert json.loads((bm_copy / "verify_report.json").read_text())["ok"] is False


def test_a_slow_implementation_is_checked_on_a_prefix(bm_copy, monkeypatch):
    def slow_litert(ctx):
        return [V.Implementation("LiteRT (slow)", "tflite",
                                 lambda inputs: run_litert(ctx.model, ctx.ir, inputs.x_q),
                                 max_steps=250)]

    monkeypatch.setattr(V.implementations, "IMPLEMENTATIONS", [slow_litert])
    report = V.verify_run(bm_copy, profiles=("tflite",), progress=False, float_model=False)
    (pair,) = report["pairs"]
    assert pair["ok"] and pair["compared"] == 2 * 100 * (16 + 4)
    assert pair["data"] == "first 2 sequences of the test split, 40 sequences x 100 steps"
    assert "on the first 2 sequences" in V.format_table(report)


def test_verify_with_the_numpy_engine_has_no_engine_pair(bm_copy, monkeypatch):
    monkeypatch.setenv(ENGINE_ENV, "numpy")
    report = V.verify_run(bm_copy, limit=2, progress=False, float_model=False)
    assert report["ok"] and report["simulator_engine"] == "numpy"
    assert not [p for p in report["pairs"] if "numpy engine" in p["b"]]
    assert {"TFLite Micro", "LiteRT BUILTIN_REF"} <= {p["b"] for p in report["pairs"]}


def test_cli_engine_option(bm_copy):
    result = CliRunner().invoke(app, ["verify", str(bm_copy), "--profile", "tflite",
                                      "--limit", "2", "--no-float", "--no-progress",
                                      "--engine", "numpy"])
    assert result.exit_code == 0, result.output
    assert json.loads((bm_copy / "verify_report.json").read_text())["simulator_engine"] == "numpy"
    assert "numpy engine" not in result.output
    result = CliRunner().invoke(app, ["verify", str(bm_copy), "--profile", "tflite",
                                      "--limit", "2", "--no-float", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "simulator (tflite) vs simulator, numpy engine (tflite)" in result.output
    result = CliRunner().invoke(app, ["verify", str(bm_copy), "--engine", "fortran"])
    assert result.exit_code == 1
    assert "unknown simulator engine 'fortran'" in result.output


@pytest.mark.parametrize("layer_units, head_steps", [((8, 6), "every"), ((5, 7, 4), "last")])
def test_verify_run_on_a_stacked_model_is_bit_exact_everywhere(bm_run, tmp_path, layer_units,
                                                             head_steps):
    """A 2- and a 3-layer model (converted by TF) on real BasicMotions: every pair of
    `elman verify` (LiteRT, TFLite Micro, the numpy engine, the host C, the emulated
    cores of the target registry, both profiles) compares every layer's state and y at every
    step."""
    run = tmp_path / "stacked"
    run.mkdir()
    shutil.copy(bm_run / "data_spec.json", run)
    (run / "model_int8.tflite").write_bytes(stacked_step_tflite(
        6, layer_units, 4, seed=7, head_steps=head_steps, window_steps=100, x_range=3.0))
    report = V.verify_run(run, limit=3, progress=False, float_model=False)
    assert report["ok"], V.mismatch_message(report)
    assert report["model"]["layer_units"] == list(layer_units)
    assert report["model"]["head_every_step"] == (head_steps == "every")
    names = {p["b"] for p in report["pairs"]}
    assert {"TFLite Micro", "LiteRT BUILTIN_REF", "simulator, numpy engine (tflm)",
            "emulated Cortex-M0+ (arm-none-eabi-gcc -O2)",
            "emulated Cortex-M4 (arm-none-eabi-gcc -O2)"} <= names
    assert any(name.startswith("generated C") for name in names)
    # 2 interpreters, 2 engines, 2 host C, every registered core for both profiles (the Uno
    # where the model's image fits its flash)
    uno = sum("ATmega328P" in p["b"] for p in report["pairs"])
    assert len(report["pairs"]) == 6 + 2 * (len(VERIFY_CPUS) - 1) + uno
    for p in report["pairs"]:
        steps = 100 if "ATmega328P" in p["b"] else 3 * 100  # the Uno: one sequence
        assert p["compared_hidden"] == steps * sum(layer_units), p
        assert p["compared"] == steps * (sum(layer_units) + 4), p
