"""The search on every core of the target registry, and the state width as a dimension.

The search keeps no timing model of its own: a trial's cycles are the registry's
cycle model (``elman.targets.cycles``) on the slowest step the emulator ran, the
same build ``elman mcu`` reports, and latency is those cycles at ``--clock``.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from elman.firmware_codegen.arm.api import build_row, emulate_and_compare
from elman.layers.random_model import random_model
from elman.quantize.reader import read_ir
from elman.search import space
from elman.search.api import usable_states
from elman.search.budget import Budget
from elman.search.footprint import ESTIMATE_SEEDS, ESTIMATE_SHAPE, ModelShape, estimate
from elman.search.trial import TrialContext
from elman.search.validation import carve, quantized_metric
from elman.targets import get_target

from elman import rundir
from elman.errors import ElmanError

NEW_CORES = ("cortex-m33", "cortex-m55", "rv32imc")


def _rows(shape: ModelShape, cpu: str, profile: str) -> list[dict]:
    """``elman mcu``'s build rows of the estimate's random-weight models, built here."""
    rows = []
    for seed in ESTIMATE_SEEDS:
        ir = random_model(shape.input_dim, (shape.units,) * shape.layers, shape.output_dim,
                          seed=seed, state_bits=shape.state_bits)
        info = np.iinfo(ir.state_dtype)
        x = np.random.default_rng(seed).integers(info.min, info.max + 1,
                                                 (*ESTIMATE_SHAPE, shape.input_dim),
                                                 dtype=ir.state_dtype)
        run, pair = emulate_and_compare(ir, x, tokens=False, profile=profile, cpu=cpu, opt="O2")
        assert pair.ok
        rows.append(build_row(ir, run, pair))
    return rows


@pytest.mark.parametrize("cpu", NEW_CORES)
def test_estimates_on_the_new_cores_use_the_registrys_cycle_model(cpu):
    shape = ModelShape("classification", 6, 4, 8)
    fp = estimate(shape, cpu=cpu, opt="O2", profile="tflm")
    rows = _rows(shape, cpu, "tflm")
    assert fp.flash == max(r["flash"] for r in rows) and fp.ram == max(r["ram"] for r in rows)
    assert fp.instructions_per_step_max == max(r["instructions_per_step_max"] for r in rows)
    assert fp.cycles_per_step_max == max(r["cycles_per_step_max"] for r in rows)
    # the registry's model prices loads and taken branches above one cycle on every core
    assert fp.cycles_per_step_max > fp.instructions_per_step_max
    assert rows[0]["cycles_per_step_max"] >= rows[0]["cycles_per_step"]
    budget = Budget.parse(cpu, None, None, "1ms", "100MHz")
    assert budget.latency_of(fp) == pytest.approx(fp.cycles_per_step_max / 100.0)
    assert budget.to_dict()["cycle_model"] == get_target(cpu).cycles.describe()


def test_cores_differ_in_cycles_for_the_same_model():
    shape = ModelShape("classification", 6, 4, 8)
    cycles = {cpu: estimate(shape, cpu=cpu, opt="O2", profile="tflm").cycles_per_step_max
              for cpu in ("cortex-m0plus", "cortex-m33", "rv32imc")}
    assert len(set(cycles.values())) == 3, cycles
    assert cycles["cortex-m33"] < cycles["cortex-m0plus"]  # DSP kernels, 32-bit Thumb-2


def test_the_int16_state_is_estimated_from_its_own_c():
    shape = ModelShape("classification", 6, 4, 16)
    wide = ModelShape("classification", 6, 4, 16, state_bits=16)
    narrow_fp = estimate(shape, cpu="cortex-m0plus", opt="O2", profile="tflm")
    wide_fp = estimate(wide, cpu="cortex-m0plus", opt="O2", profile="tflm")
    rows = _rows(wide, "cortex-m0plus", "tflm")
    assert wide_fp.flash == max(r["flash"] for r in rows)
    assert wide_fp.ram == max(r["ram"] for r in rows)
    assert wide_fp.instructions_per_step_max == max(r["instructions_per_step_max"] for r in rows)
    assert all(r["state_bytes"] == 2 * 16 for r in rows)
    # more work per step; twice the state's bytes, which is more RAM where both steps copy h
    # as int16 (the Cortex-M4; on the M0+ the int8 step's assembly kernel copies h as int32)
    assert wide_fp.instructions_per_step_max > narrow_fp.instructions_per_step_max
    assert wide_fp.ram != narrow_fp.ram
    narrow_m4 = estimate(shape, cpu="cortex-m4", opt="O2", profile="tflm")
    wide_m4 = estimate(wide, cpu="cortex-m4", opt="O2", profile="tflm")
    assert wide_m4.ram >= narrow_m4.ram + 16


def test_state_widths_parse_and_narrow_the_space():
    assert space.parse_states("int16, INT8") == ("int8", "int16")
    assert space.parse_states("int16") == ("int16",)
    for bad in ("int4", "", "int8,float"):
        with pytest.raises(ElmanError, match="--states"):
            space.parse_states(bad)
    import optuna

    limits = space.SpaceLimits(max_units=8, timesteps=100, states=("int16",))
    study = optuna.create_study()
    assert {space.suggest(study.ask(), limits, space.CLASSIFICATION)["state"]
            for _ in range(4)} == {"int16"}
    both = space.SpaceLimits(max_units=8, timesteps=100)
    random = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    assert {space.suggest(random.ask(), both, space.CLASSIFICATION)["state"]
            for _ in range(20)} == {"int8", "int16"}


def test_a_state_width_the_core_cannot_build_is_dropped_with_one_line(tmp_path):
    ctx = TrialContext(data=carve("sensor:basicmotions"), budget=Budget(cpu="cortex-m55"),
                       limits=space.SpaceLimits(max_units=8, timesteps=100), opt="O2",
                       epochs=1, search_dir=tmp_path)
    err = io.StringIO()
    usable = usable_states(ctx, err)
    assert usable[0] == "int8"
    lines = err.getvalue().splitlines()
    dropped = [s for s in space.STATES if s not in usable]
    assert len(lines) == len(dropped)
    for state, line in zip(dropped, lines, strict=True):
        assert line.startswith(f"state {state} is not searched: it does not build on "
                               "cortex-m55 (")
    # a width kept was built and found bit-exact on the core (the estimate raises otherwise)
    assert {dict(key)["state"] for key in ctx.estimates} == set(usable)


def test_a_width_the_registry_says_the_core_lacks_is_dropped_without_a_build(tmp_path):
    ctx = TrialContext(data=carve("sensor:basicmotions"), budget=Budget(cpu="atmega328p"),
                       limits=space.SpaceLimits(max_units=8, timesteps=100), opt="O2",
                       epochs=1, search_dir=tmp_path)
    err = io.StringIO()
    assert usable_states(ctx, err) == ("int8",)
    assert err.getvalue().splitlines() == [
        "state int16 is not searched: atmega328p's kernels build the int8 state only"]
    assert {dict(key)["state"] for key in ctx.estimates} == {"int8"}  # int16: never built


STREAM = ["--data", "sensor:basicmotions-stream", "--cpu", "cortex-m33", "--states", "int16",
          "--flash", "16K", "--ram", "2K", "--latency", "1ms", "--clock", "100MHz",
          "--trials", "1", "--jobs", "1", "--epochs", "1", "--max-units", "6",
          "--max-layers", "1"]


def elman(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "elman.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def stream_search(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("stream") / "s"
    proc = elman("search", *STREAM, str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_a_per_step_int16_search_on_the_cortex_m33_reports_what_it_measured(stream_search,
                                                                          tmp_path):
    """Per-step labels (the streaming task), the int16 state and a core beyond M0+/M4, in one
    real trial: its metric is the per-step accuracy of its quantized model on the carved
    validation streams, and its footprint, cycles and latency are elman mcu's."""
    out, proc = stream_search
    report = json.loads((out / "search_report.json").read_text())
    assert report["objective"]["metric"] == "quantized validation per-step accuracy"
    assert report["budget"]["cycle_model"]["name"] == "cortex-m33"
    (trial,) = [t for t in report["trials"] if t["state"] == "complete"]
    assert trial["params"]["state"] == "int16" and trial["footprint"] == "measured"
    run_dir = Path(trial["run_dir"])
    ir = read_ir(run_dir / rundir.MODEL_TFLITE)
    assert ir.state_bits == 16 and ir.head.every_step and ir.layer_units == (
        trial["params"]["units"],)
    data = carve("sensor:basicmotions-stream")
    assert data.y_val.ndim == 2  # a label per step of each validation stream
    assert trial["metric"] == quantized_metric(ir, trial["params"]["profile"], data)
    # elman mcu on a copy of the trial's run directory: the same numbers
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / rundir.MCU_REPORT).unlink()
    mcu = elman("mcu", str(copy), "--cpu", "cortex-m33", "--opt", "O2", "--profile",
                trial["params"]["profile"], "--clock", "100MHz")
    assert mcu.returncode == 0, mcu.stderr[-2000:]
    build = json.loads((copy / rundir.MCU_REPORT).read_text())["builds"][0]
    keys = ("flash", "ram", "instructions_per_step", "instructions_per_step_max",
            "cycles_per_step_max")
    assert {k: trial[k] for k in keys} == {k: build[k] for k in keys}
    assert build["state_bytes"] == 2 * ir.state_bytes
    assert trial["latency_us"] == pytest.approx(build["cycles_per_step_max"] / 100.0)
    best = report["best"]
    assert best["number"] == trial["number"] and best["feasible"] is True
    assert best["flash"] <= 16 * 1024 and best["ram"] <= 2048 and best["latency_us"] <= 1000
    assert "int16" in proc.stdout and "per-step accuracy" in proc.stdout
    assert f"{build['cycles_per_step_max']:,.0f} cycles" in proc.stdout
