"""Stacked layers in the search: the space samples 1 to --max-layers, a random-weight
estimate of a stack is what its trained model measures (within the margins), and a trial
trains, quantizes, scores and measures a stacked model."""

from __future__ import annotations

import json

import optuna
import pytest
from elman.quantize.reader import read_ir
from elman.search import space
from elman.search.budget import Budget
from elman.search.footprint import ModelShape, estimate
from elman.search.trial import TrialContext, run_trial
from elman.search.validation import carve

from elman import rundir
from elman.errors import ElmanError


def test_the_space_samples_one_to_max_layers_and_its_smallest_model_has_one():
    limits = space.SpaceLimits(min_units=4, max_units=8, timesteps=100)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = {space.suggest(study.ask(), limits, space.CLASSIFICATION)["layers"]
            for _ in range(40)}
    assert seen == {1, 2, 3}
    one = space.SpaceLimits(max_layers=1)
    text = optuna.create_study()
    assert {space.suggest(text.ask(), one, space.TEXT)["layers"] for _ in range(5)} == {1}
    assert all(s["layers"] == 1 for s in space.smallest_shapes(limits, space.CLASSIFICATION))
    for bad in (0, 4):
        with pytest.raises(ElmanError, match="--max-layers must be 1 to 3"):
            space.SpaceLimits(max_layers=bad)


def test_each_stacked_layer_adds_flash_ram_and_instructions():
    fps = [estimate(ModelShape("classification", 6, 4, 8, layers=n), cpu="cortex-m0plus",
                    opt="O2", profile="tflm") for n in (1, 2, 3)]
    for below, above in zip(fps, fps[1:], strict=False):
        assert above.flash > below.flash and above.ram > below.ram
        assert above.instructions_per_step_max > below.instructions_per_step_max


def test_a_stacked_trial_is_trained_measured_and_within_its_estimate(tmp_path):
    data = carve("sensor:basicmotions")
    ctx = TrialContext(data=data, budget=Budget(cpu="cortex-m0plus", flash=64 * 1024),
                       limits=space.SpaceLimits(min_units=4, max_units=12, timesteps=100),
                       opt="O2", epochs=2, search_dir=tmp_path / "search")
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"units": 6, "layers": 3, "lr": 5e-3, "bptt": 0,
                         "profile": "tflite", "state": "int8"})
    trial = study.ask()
    metric = run_trial(trial, ctx)
    assert trial.params["layers"] == 3 and 0.0 <= metric <= 1.0
    run_dir = ctx.run_dir(trial.number)
    ir = read_ir(run_dir / rundir.MODEL_TFLITE)
    assert [layer.units for layer in ir.layers] == [6, 6, 6]
    attrs = trial.user_attrs
    mcu = json.loads((run_dir / rundir.MCU_REPORT).read_text())["builds"][0]
    assert mcu["profile"] == "tflite"
    for key in ("flash", "ram", "instructions_per_step", "instructions_per_step_max"):
        assert attrs["measured"][key] == mcu[key]
    assert attrs["bound_held"] is True and attrs["feasible"] is True
    assert attrs["measured"]["flash"] > estimate(
        ModelShape("classification", 6, 4, 6, layers=2), cpu="cortex-m0plus", opt="O2",
        profile="tflite").flash
