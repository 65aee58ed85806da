"""The int16 state (16x8: int16 activations and state, int8 weights, int64 biases).

Real TF conversions, real LiteRT and TFLite Micro: the simulator of each profile must
equal its interpreter on every step of every sequence, the state fed back; and the
plain reference program must equal the simulator.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from elman.firmware_codegen.arm.emulate import run_emulated
from elman.firmware_codegen.host import run_host_c, run_host_c_tokens
from elman.layers.random_model import random_model
from elman.profiles import get_profile
from elman.profiles import primitives as P
from elman.quantize.ir import STATE_QUANT_16, QuantizedModel, QuantParams
from elman.quantize.reader import read_ir
from elman.quantize.testing import random_step_tflite
from elman.runtime.interpreters import run_litert, run_tflm
from elman.runtime.reference import reference_run
from elman.runtime.simulator import Simulator
from elman.targets.registry import get_target, target_names
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from elman.cli import app


def _model(units=(24,), output_dim=3, seed=0, x_range=1.0, weight_scale=1.0):
    data = random_step_tflite(5, units, output_dim, seed=seed, x_range=x_range,
                              weight_scale=weight_scale, state_bits=16)
    return data, read_ir(data)


def _inputs(ir: QuantizedModel, batch: int, steps: int, seed: int, spread: float = 1.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, spread, (batch, steps, ir.input_dim))
    return ir.input_quant.quantize(x)


def test_converter_pins_the_int16_state_to_tanh_output():
    _, ir = _model()
    assert ir.state_bits == 16 and ir.state_dtype is np.int16
    assert ir.state_quant == STATE_QUANT_16 == QuantParams(1 / 32768, 0, 16)
    layer = ir.layers[0]
    assert layer.recurrent_fc.input == STATE_QUANT_16 and layer.tanh.output == STATE_QUANT_16
    assert layer.add.left_shift == 15
    assert layer.input_fc.bias.dtype == np.int64 and ir.head.fc.bias.dtype == np.int64
    assert ir.input_quant.bits == 16 and ir.input_quant.zero_point == 0
    assert ir.output_quant.bits == 16
    # FC(x)'s output range is elman's own (not the ADD's, TF's calibrator bug)
    assert layer.input_fc.output.scale != layer.add.output.scale


@pytest.mark.parametrize("units, weight_scale, spread", [
    ((24,), 1.0, 1.0),      # ordinary
    ((16,), 3.0, 4.0),      # saturating: the state at the int16 ends, TANH's clamp
    ((12, 8), 1.5, 2.0),    # two layers: layer 2 reads layer 1's int16 state
])
def test_simulator_equals_litert_and_tflm_bit_for_bit(units, weight_scale, spread):
    data, ir = _model(units=units, weight_scale=weight_scale)
    x_q = _inputs(ir, batch=6, steps=60, seed=1, spread=spread)
    for profile, interpreter in (("tflite", run_litert), ("tflm", run_tflm)):
        got = interpreter(data, ir, x_q)
        ref = reference_run(ir, profile, x_q)
        for engine in ("numpy", "numba"):
            sim = Simulator(ir, profile, engine=engine).run(x_q)
            assert sim.h.dtype == np.int16 and got.h.dtype == np.int16
            np.testing.assert_array_equal(sim.h, got.h)
            np.testing.assert_array_equal(sim.y, got.y)
            np.testing.assert_array_equal(ref.h, sim.h)
            np.testing.assert_array_equal(ref.y, sim.y)


def test_the_two_profiles_differ_on_int16_and_each_matches_its_interpreter():
    """LiteRT requantizes FULLY_CONNECTED's int64 sums in double precision, TFLite Micro
    with a 16-bit multiplier: over a long stream the two states part."""
    data, ir = _model()
    x_q = _inputs(ir, batch=2, steps=300, seed=4)
    tflm = Simulator(ir, "tflm").run(x_q)
    tflite = Simulator(ir, "tflite").run(x_q)
    assert np.count_nonzero(tflm.h != tflite.h) > 0
    np.testing.assert_array_equal(tflm.h, run_tflm(data, ir, x_q).h)
    np.testing.assert_array_equal(tflite.h, run_litert(data, ir, x_q).h)


def test_streaming_steps_equal_the_whole_run():
    _, ir = _model()
    x_q = _inputs(ir, batch=3, steps=10, seed=2)
    sim = Simulator(ir, "tflm")
    whole = sim.run(x_q)
    sim.reset(3)
    for t in range(10):
        h, y = sim.step(x_q[:, t])
        np.testing.assert_array_equal(h, whole.h[:, t])
        np.testing.assert_array_equal(y, whole.y[:, t])
    with pytest.raises(ValueError, match="int16"):
        sim.run(x_q.astype(np.int8))


def test_the_compiled_engine_runs_the_int16_state():
    """The numba engine's int16 loop (the default engine) equals the numpy engine, whole
    runs and streaming, both profiles; it has no batched (BLAS) loop."""
    _, ir = _model(units=(12, 8), weight_scale=2.0)
    x_q = _inputs(ir, batch=20, steps=40, seed=5, spread=3.0)
    for profile in ("tflm", "tflite"):
        numba = Simulator(ir, profile)
        assert numba.engine == "numba"
        want = Simulator(ir, profile, engine="numpy").run(x_q)
        got = numba.run(x_q)
        np.testing.assert_array_equal(got.h, want.h)
        np.testing.assert_array_equal(got.y, want.y)
        numba.reset(20)
        for t in range(5):
            h, _ = numba.step(x_q[:, t])
            np.testing.assert_array_equal(h, want.h[:, t])
        with pytest.raises(ValueError, match="no batched"):
            numba.run(x_q, loop="batched")


def test_int16_ir_json_round_trip():
    _, ir = _model(units=(12, 8), weight_scale=1.5)
    again = QuantizedModel.from_json(ir.to_json())
    assert again == ir and again.state_bits == 16
    assert again.layers[0].input_fc.bias.dtype == np.int64


def test_inspect_names_the_int16_widths(tmp_path):
    """`elman inspect` of a 16x8 model: int16 input, state and output, int64 biases, the
    state's size in bytes (two per value)."""
    data, ir = _model(units=(12, 8))
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    result = CliRunner().invoke(app, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"x input:  int16, scale {ir.input_quant.scale:.9g}, zero point 0" in out
    assert "h state:  int16, scale 3.05175781e-05, zero point 0" in out
    assert f"y output: int16, scale {ir.output_quant.scale:.9g}" in out
    assert "int8," not in out and "int32" not in out
    assert out.count("bias: int64") == 3  # W_x of each layer and the head (W_h: none)
    assert "state 40 bytes" in out  # 12 + 8 int16 values


def test_int16_quantize_saturates_at_the_int16_ends():
    q = QuantParams(0.5, 0, 16)
    np.testing.assert_array_equal(q.quantize(np.array([-1e9, -0.25, 0.25, 0.75, 1e9, np.inf])),
                                  [-32768, -1, 1, 2, 32767, 32767])
    assert q.quantize(np.zeros(1)).dtype == np.int16


def test_tanh_int16_is_odd_monotone_and_reaches_the_ends():
    z = np.arange(-32768, 32768, dtype=np.int64)
    for scale in (1.0 / 4096, 1.0 / 2048, 0.000167851802, 3e-4, 1e-5):
        out = P.tanh_int16(z, scale).astype(np.int64)
        assert np.all(np.diff(out) >= 0)
        assert out[32768] == 0  # tanh(0)
        real = np.tanh(z * scale)
        assert np.max(np.abs(out / 32768 - real)) < 4e-4  # the table's interpolation error
    big = P.tanh_int16(np.array([32767, -32768]), 3e-4)
    assert big.tolist() == [32767, -32767]


def test_tanh_int16_params_power_of_two_case():
    assert P.tanh_int16_params(1 / 4096) == (0, 0)
    assert P.tanh_int16_params(1 / 2048) == (0, 1)
    m, shift = P.tanh_int16_params(0.000167851802)
    assert 32767 / 2 < m <= 32767 and shift > 0


def test_int64_requantization_of_tflm():
    """TFLite Micro's int64 MultiplyByQuantizedMultiplier: a 16-bit multiplier, ties up."""
    m, s = P.quantize_multiplier(0.25)  # 2**30, shift -1 -> reduced 2**14
    out = P.multiply_by_quantized_multiplier_int64(np.array([2, 6, -2, -6, 5, -5]), m, s)
    np.testing.assert_array_equal(out, [1, 2, 0, -1, 1, -1])  # x/4: ties toward +inf
    big = P.multiply_by_quantized_multiplier_int64(np.array([1 << 20]), 0x7FFFFFFF, -16)
    # the multiplier capped at 0x7FFF, total shift 15 + 16, rounding 2**30
    assert big.tolist() == [((1 << 20) * 0x7FFF + (1 << 30)) >> 31]
    tflite = get_profile("tflite").requantize16(np.array([[6, -6, 1 << 40]]), None, None,
                                                np.array([0.25, 0.25, 0.25]))
    np.testing.assert_array_equal(tflite, [[2, -2, 32767]])  # ties away, int16 saturation


# ---- the generated C of the int16 state -------------------------------------------------------
SETTINGS = settings(max_examples=6, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
sizes = st.one_of(st.integers(1, 8), st.integers(9, 200), st.sampled_from([1, 3, 127, 200]))


def _same(c, sim, ir):
    assert c.h.dtype == np.int16
    np.testing.assert_array_equal(c.h, sim.h)
    if ir.head is None:
        assert c.y is None and sim.y is None
    else:
        np.testing.assert_array_equal(c.y, sim.y)


@pytest.mark.parametrize("profile", ["tflm", "tflite"])
@SETTINGS
@given(input_dim=sizes, layer_units=st.lists(sizes, min_size=1, max_size=3),
       output_dim=st.one_of(st.just(0), sizes), extreme=st.booleans(),
       seed=st.integers(0, 2**31 - 1), steps=st.integers(1, 10))
@example(input_dim=1, layer_units=[1], output_dim=1, extreme=True, seed=1, steps=3)
@example(input_dim=5, layer_units=[200, 1, 200], output_dim=7, extreme=True, seed=3, steps=4)
def test_int16_c_equals_simulator_on_random_irs(profile, input_dim, layer_units, output_dim,
                                                extreme, seed, steps):
    ir = random_model(input_dim, layer_units, output_dim, seed=seed, extreme=extreme,
                      state_bits=16)
    x_q = np.random.default_rng(seed).integers(-32768, 32768, size=(3, steps, input_dim),
                                               dtype=np.int16)
    sim = Simulator(ir, profile).run(x_q)
    _same(run_host_c(ir, x_q, profile=profile), sim, ir)
    _same(Simulator(ir, profile, engine="numpy").run(x_q), sim, ir)  # the two engines
    np.testing.assert_array_equal(reference_run(ir, profile, x_q).h, sim.h)


@pytest.mark.parametrize("profile", ["tflm", "tflite"])
def test_int16_token_step_equals_simulator(profile):
    ir = random_model(6, (20, 9), 30, seed=5, vocab_size=30, state_bits=16)
    ids = np.random.default_rng(0).integers(0, 30, size=(2, 12))
    _same(run_host_c_tokens(ir, ids, profile=profile), Simulator(ir, profile).run_tokens(ids), ir)


def test_random_int16_irs_are_lively():
    ir = random_model(5, 40, 3, seed=0, state_bits=16)
    x_q = np.random.default_rng(0).integers(-32768, 32768, size=(2, 8, 5), dtype=np.int16)
    assert len(np.unique(Simulator(ir, "tflm").run(x_q).h)) > 200


def test_int16_c_sanitized_and_emulated_equal_the_interpreters():
    """A converted 16x8 model: host C (with sanitizers) and the C on emulated Cortex-M0+
    (portable) and Cortex-M4 (DSP path: SMLAD on the int16 state) equal LiteRT (tflite) and
    TFLite Micro (tflm) on every step."""
    data, ir = _model(units=(12, 8), weight_scale=1.5)
    x_q = _inputs(ir, batch=2, steps=12, seed=7, spread=2.0)
    for profile, interpreter in (("tflite", run_litert), ("tflm", run_tflm)):
        want = interpreter(data, ir, x_q)
        _same(run_host_c(ir, x_q, profile=profile, sanitize=True), want, ir)
        for cpu in ("cortex-m0plus", "cortex-m4"):
            _same(run_emulated(ir, x_q, profile=profile, cpu=cpu).outputs, want, ir)


# A core whose entry does not build the int16 state (the ATmega328P: its kernels assume a
# 32-bit int) refuses it with one error: tests/test_avr.py checks that refusal.
@pytest.mark.parametrize("cpu", [c for c in target_names()
                                 if c not in ("cortex-m0plus", "cortex-m4")
                                 and 16 in get_target(c).state_bits])
def test_int16_c_on_every_other_registered_core_equals_the_simulator(cpu):
    """Every core `elman verify` emulates builds and runs the int16 state (the Helium core
    takes the DSP path: its vector kernel reads int8), bit-exact on every step, both
    profiles, two layers with units not a multiple of 4."""
    ir = random_model(5, (10, 7), 3, seed=2, state_bits=16)
    x_q = np.random.default_rng(3).integers(-32768, 32768, size=(2, 6, 5), dtype=np.int16)
    for profile in ("tflm", "tflite"):
        _same(run_emulated(ir, x_q, profile=profile, cpu=cpu).outputs,
              Simulator(ir, profile).run(x_q), ir)


def test_int16_state_on_cortex_m4_costs_at_most_2_2_instructions_per_mac():
    """128 units, -O2, profile tflm, the DSP path: exact executed Thumb instructions of a
    whole step (6 inputs, 128 units, 4 outputs; head included), every step bit-exact."""
    ir = random_model(6, 128, 4, seed=1, state_bits=16)
    x_q = np.random.default_rng(0).integers(-32768, 32768, (1, 3, 6)).astype(np.int16)
    run = run_emulated(ir, x_q, profile="tflm", cpu="cortex-m4", opt="O2")
    _same(run.outputs, Simulator(ir, "tflm").run(x_q), ir)
    assert run.instructions_per_mac <= 2.2, run.instructions_per_mac


# ---- the CLI on real data -------------------------------------------------------------------
def _copied(run: Path, tmp_path: Path) -> Path:
    """The trained model of a fixture run, in a fresh directory (no ledger: taken as is)."""
    out = tmp_path / "run"
    out.mkdir()
    for name in ("model.keras", "data_spec.json", "train_report.json"):
        shutil.copy2(run / name, out / name)
    return out


def test_int16_state_calibrates_sensor_inputs_on_their_whole_range(bm_run, tmp_path):
    """16x8 has the steps to spare: x is calibrated on the training inputs' min/max (no
    training value clips; int8 keeps its 0.1-99.9 percentiles), the report measures the
    state error in the int16 state's unit, and compares it with the int8 state's on the
    same data (the quant report, the printed summary, the report page)."""
    from elman.data.spec import load_run_data
    from elman.quantize.api import quantize_run, summary_table

    from elman.report_html import render_report

    run = _copied(bm_run, tmp_path)
    report = quantize_run(run, progress=False, state="int16")
    ir = read_ir(run / "model_int8.tflite")
    x = load_run_data(run).x_train
    q = ir.input_quant
    assert q.bits == 16
    rounding = np.abs(q.dequantize(q.quantize(x)) - x)  # a clipped value would be far off
    assert rounding.max() <= q.scale / 2 * (1 + 1e-4), (rounding.max(), q.scale)
    cal = report["quantization"]["calibration"]
    assert cal["input_range"] == "0 to 100 percentile of training inputs"
    assert report["evaluation"]["hidden_error"]["unit"] == \
        "float units (int16 state, scale 1/32768 = 3.05176e-05 per LSB)"
    int8 = json.loads((bm_run / "quant_report.json").read_text())
    assert int8["quantization"]["calibration"]["input_range"].startswith("0.1 to 99.9")
    assert int8["evaluation"]["hidden_error"]["unit"] == \
        "float units (int8 state, scale 1/128 = 0.0078125 per LSB)"
    # int8 vs int16, side by side: the int8 row is what `elman quantize` (int8) measures
    int8_ev, int16_ev = int8["evaluation"], report["evaluation"]
    comparison = report["state_comparison"]
    rows = {r["state"]: r for r in comparison["rows"]}
    assert rows["int8"]["hidden_error_mean"] == pytest.approx(int8_ev["hidden_error"]["mean"])
    assert rows["int8"]["hidden_error_max"] == pytest.approx(int8_ev["hidden_error"]["max"])
    assert rows["int8"]["quantized"] == int8_ev["metrics"]["int8"]["accuracy"]
    assert rows["int16"]["hidden_error_max"] == int16_ev["hidden_error"]["max"]
    assert rows["int16"]["by_step"]["max"] == int16_ev["hidden_error"]["by_step"]["max"]
    assert comparison["mean_error_ratio"] == pytest.approx(
        int8_ev["hidden_error"]["mean"] / int16_ev["hidden_error"]["mean"])
    assert comparison["mean_error_ratio"] > 1.5  # 1/32768 vs 1/128: the state is finer
    printed = summary_table(report)
    assert printed.splitlines()[1].split() == ["metric", "float", "16x8"]  # not "int8"
    assert summary_table(int8).splitlines()[1].split() == ["metric", "float", "int8"]
    assert "int8 vs int16 state" in printed and "the int16 state's error against float" in printed
    assert "the float weights are off the int8 grid" in printed  # trained without --qat-weights
    page = render_report(run)
    assert "int8 vs int16 state" in page and "Quantization: float vs 16x8 (int16 state)" in page
    assert "int64 biases" in page and "int32 biases" not in page  # the widths as stored


@pytest.mark.slow
def test_elman_run_state_int16_on_basicmotions_is_bit_exact_everywhere(bm_run, tmp_path):
    """`elman run --from quantize --state int16` on real BasicMotions data: the converted
    model's state is int16 (1/32768), every pair of verify is bit-exact (LiteRT, TFLite
    Micro, host C, emulated Cortex-M4), mcu measures the int16 build, report.html is written."""
    run = _copied(bm_run, tmp_path)
    result = CliRunner().invoke(app, ["run", "--from", "quantize", "--state", "int16", "--quiet",
                                      "--cpu", "cortex-m4", str(run)])
    assert result.exit_code == 0, result.output
    assert "int8 vs int16 state" in result.output  # the summary's side-by-side table
    assert "16x8 step model (int16 state)" in result.output
    assert "(int16 h and y of every step)" in result.output
    ir = read_ir(run / "model_int8.tflite")
    assert ir.state_quant == STATE_QUANT_16
    quant = json.loads((run / "quant_report.json").read_text())
    assert quant["quantization"]["state_bits"] == 16
    assert quant["quantization"]["state"]["scale"] == 1 / 32768
    verify = json.loads((run / "verify_report.json").read_text())
    names = {p["b"] for p in verify["pairs"]}
    assert {"LiteRT BUILTIN_REF", "TFLite Micro"} <= names
    assert any(n.startswith("generated C") for n in names)
    assert any("Cortex-M4" in n for n in names)
    assert verify["ok"] and all(p["mismatches"] == 0 and p["compared"] > 0
                                for p in verify["pairs"])
    mcu = json.loads((run / "mcu_report.json").read_text())
    assert mcu["all_bit_exact"]
    assert all(b["state_bytes"] == 2 * ir.state_bytes for b in mcu["builds"])
    assert (run / "report.html").exists()
    shown = CliRunner().invoke(app, ["inspect", str(run)])
    assert "3.05175781e-05" in shown.output and "int16" in shown.output


@pytest.mark.slow
def test_text_model_with_int16_state_token_step_is_bit_exact(text_run, tmp_path):
    """A text model: the int16 embedding table in the metadata, the token step of the C."""
    run = _copied(text_run, tmp_path)
    result = CliRunner().invoke(app, ["quantize", "--state", "int16", "--no-progress",
                                      "--eval-chars", "400", str(run)])
    assert result.exit_code == 0, result.output
    ir = read_ir(run / "model_int8.tflite")
    assert ir.embedding.dtype == np.int16 and ir.state_bits == 16
    ids = np.random.default_rng(0).integers(0, ir.vocab_size, size=(2, 40))
    for profile in ("tflm", "tflite"):
        sim = Simulator(ir, profile).run_tokens(ids)
        _same(run_host_c_tokens(ir, ids, profile=profile), sim, ir)
    data = (run / "model_int8.tflite").read_bytes()
    x_q = ir.embedding[ids]
    np.testing.assert_array_equal(run_litert(data, ir, x_q).h, Simulator(ir, "tflite").run(x_q).h)
    np.testing.assert_array_equal(run_tflm(data, ir, x_q).h, Simulator(ir, "tflm").run(x_q).h)


def test_text_int16_state_puts_both_state_widths_on_the_size_curve(text_run, tmp_path):
    """`elman quantize --state int16` on a text run, over the whole validation stream: the
    comparison rows carry each model's perplexity and parameter bytes as stored (int16
    embedding and int64 biases for 16x8), and the size curve shows float, int8 and 16x8."""
    from elman.quantize.api import quantize_run

    from elman.report_size_curve import rnn_points

    run = _copied(text_run, tmp_path)
    quant = quantize_run(run, progress=False, state="int16")
    int8 = json.loads((text_run / "quant_report.json").read_text())  # the fixture: int8
    rows = {r["state"]: r for r in quant["state_comparison"]["rows"]}
    pb, pb8 = quant["model"]["parameter_bytes"], int8["model"]["parameter_bytes"]
    assert pb["int8_weights"] == pb8["int8_weights"]
    assert pb["int64_biases"] == 2 * pb8["int32_biases"]
    assert pb["int16_embedding"] == 2 * pb8["int8_embedding"]
    assert rows["int16"]["parameter_bytes"] == pb["total"]
    assert rows["int8"]["parameter_bytes"] == pb8["total"]
    assert rows["int16"]["perplexity"] == quant["evaluation"]["metrics"]["int8"]["perplexity"]
    assert rows["int8"]["whole_stream"] and rows["int16"]["whole_stream"]
    train = json.loads((run / "train_report.json").read_text())
    points = rnn_points(train, quant, None)
    assert [p.label.split(",")[0] for p in points] == [
        "RNN float32", "RNN int8", "RNN 16x8 (int16 state)"]
    assert [p.bytes for p in points[1:]] == [pb8["total"], pb["total"]]
    assert points[1].perplexity == rows["int8"]["perplexity"]
