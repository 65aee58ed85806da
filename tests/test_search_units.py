"""elman search's pieces that need no training: budgets, latency, space, report, storage."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from elman.search import space
from elman.search.budget import Budget, latency_us, parse_size
from elman.search.footprint import Footprint, ModelShape, estimate
from elman.search.report import choose_best, pareto_front
from elman.search.study import open_storage, open_study, redact
from elman.search.validation import VALIDATION_FRACTION, carve

from elman.errors import ElmanError


@pytest.mark.parametrize(("text", "value"), [
    ("32K", 32768), ("4KB", 4096), ("1.5KiB", 1536), ("1M", 1048576), ("12000", 12000),
    ("2 kb", 2048)])
def test_sizes_parse(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "12Q", "-3K", "0", "K", "nanK", "1e999K"])
def test_bad_sizes_are_one_clear_error(text):
    with pytest.raises(ElmanError, match="--flash"):
        parse_size(text)


def _fp(flash, ram, cycles, instructions=1000):
    return Footprint(flash=flash, ram=ram, instructions_per_step=float(instructions),
                     instructions_per_step_max=instructions, cycles_per_step_max=cycles)


def test_budget_parses_times_and_clocks_and_computes_latency_from_cycles():
    b = Budget.parse("cortex-m0plus", "32K", "4K", "2ms", "64MHz")
    assert (b.flash, b.ram, b.latency_us, b.clock_hz) == (32768, 4096, 2000.0, 64e6)
    # latency = the target's cycle model on the slowest step / clock
    assert b.latency_of(_fp(1, 1, 64_000.0)) == pytest.approx(1000.0)
    assert latency_us(1000.0, None) is None and latency_us(None, 64e6) is None
    assert b.exceeded(_fp(30000, 4000, 1000.0)) == []
    over = b.exceeded(_fp(40000, 5000, 10.0**6))
    assert [o.split()[0] for o in over] == ["flash", "RAM", "latency"]
    assert "1,000,000 cycles" in over[2]
    v = b.violations(_fp(40000, 2048, 10.0))
    assert v["flash"] == pytest.approx((40000 - 32768) / 32768) and v["ram"] < 0
    assert Budget.parse("cortex-m4", None, None, None, "1.5GHz").clock_hz == 1.5e9
    # the report names the registry's cycle model of the core
    assert b.to_dict()["cycle_model"]["name"] == "cortex-m0plus"


def test_budget_refuses_latency_without_clock_and_unknown_cores():
    with pytest.raises(ElmanError, match="--latency needs --clock"):
        Budget.parse("cortex-m4", None, None, "1ms", None)
    with pytest.raises(ElmanError, match="unknown cpu 'cortex-a53'; known targets: .*rv32imc"):
        Budget.parse("cortex-a53", None, None, None, None)
    with pytest.raises(ElmanError, match="--clock"):
        Budget.parse("cortex-m4", None, None, None, "fast")


def test_space_suggests_every_dimension_of_the_task_and_lists_the_smallest_models():
    limits = space.SpaceLimits(min_units=3, max_units=20, timesteps=100)
    trial = optuna.create_study().ask()
    params = space.suggest(trial, limits, space.CLASSIFICATION)
    assert set(params) == {"units", "layers", "lr", "bptt", "profile", "state"}
    assert params["state"] in ("int8", "int16")
    assert 3 <= params["units"] <= 20 and params["bptt"] in (0, 25, 50)
    train, build = space.split(params, space.CLASSIFICATION)
    assert set(build) == {"profile", "state"} and "units" in train
    text = space.suggest(optuna.create_study().ask(), limits, space.TEXT)
    assert "embedding" in text and text["bptt"] in (16, 32, 64)
    smallest = space.smallest_shapes(limits, space.CLASSIFICATION)
    assert smallest == [{"units": 3, "layers": 1, "profile": p, "state": w}
                        for p in space.PROFILES for w in space.STATES]
    assert space.SpaceLimits(timesteps=100, equal_length=False).bptt_choices(
        space.CLASSIFICATION) == (0,)
    with pytest.raises(ElmanError, match="--min-units"):
        space.SpaceLimits(min_units=10, max_units=5)


def test_estimate_grows_with_units_and_its_lower_bound_is_below_it():
    small = estimate(ModelShape("classification", 6, 4, 8), cpu="cortex-m0plus", opt="O2",
                     profile="tflm")
    big = estimate(ModelShape("classification", 6, 4, 32), cpu="cortex-m0plus", opt="O2",
                   profile="tflm")
    assert big.flash > small.flash and big.ram > small.ram
    assert big.instructions_per_step_max > small.instructions_per_step_max
    low = big.lower_bound()
    assert big.at_least(low) and not low.at_least(big)


def test_validation_is_carved_from_the_training_split_only():
    data = carve("sensor:basicmotions")
    from elman.data.datasets import load_dataset

    full = load_dataset("sensor:basicmotions")
    n = len(full.y_train)
    assert len(data.y_val) == round(n * VALIDATION_FRACTION)
    assert len(data.train.y_train) + len(data.y_val) == n
    # the test split is the same sequences (normalized with the statistics trained on)
    np.testing.assert_allclose(data.train.x_test * data.train.std + data.train.mean,
                               full.x_test * full.std + full.mean, atol=1e-3)
    np.testing.assert_array_equal(data.train.y_test, full.y_test)
    assert "search_validation" in data.train.spec()
    # every validation sequence is a training sequence (not a test one), in raw units
    raw_val = data.x_val * data.train.std + data.train.mean
    raw_train = full.x_train * full.std + full.mean
    for seq in raw_val:
        assert np.abs(raw_train - seq).max(axis=(1, 2)).min() < 1e-3


def _entry(number, metric, flash, ram=100, latency=10.0, feasible=True, state="complete"):
    return {"number": number, "metric": metric, "flash": flash, "ram": ram,
            "latency_us": latency, "feasible": feasible, "state": state,
            "footprint": "measured"}


def test_best_and_pareto_fronts():
    entries = [_entry(0, 0.9, 5000), _entry(1, 0.9, 4000), _entry(2, 0.95, 9000, feasible=False),
               _entry(3, 0.8, 3000), _entry(4, 0.7, 3500), _entry(5, None, 100, state="pruned")]
    assert choose_best(entries, "maximize")["number"] == 1
    assert pareto_front(entries, "flash", "maximize") == [1, 2, 3]
    assert choose_best(entries, "minimize")["number"] == 4
    assert choose_best([_entry(0, 0.5, 1, feasible=False)], "maximize") is None


def test_storage_url_password_is_redacted_and_a_bad_url_is_one_error():
    assert redact("postgresql://me:secret@db:5432/x") == "postgresql://me:***@db:5432/x"
    assert redact("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    with pytest.raises(ElmanError, match="cannot open the study storage"):
        open_storage("nosuchdb://x")


def test_study_holds_exactly_the_requested_slots_and_refuses_other_options(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    config = {"data": "sensor:basicmotions", "flash": 1000}
    study = open_study(open_storage(url), "s", direction="maximize", config=config, trials=3,
                       epochs=5, seed=0)
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert sorted(t.user_attrs["slot"] for t in waiting) == [0, 1, 2]
    again = open_study(open_storage(url), "s", direction="maximize", config=config, trials=5,
                       epochs=5, seed=0)
    assert sorted(t.user_attrs["slot"] for t in again.get_trials()) == [0, 1, 2, 3, 4]
    with pytest.raises(ElmanError, match="other search options.*flash: 1000 there, 2000 here"):
        open_study(open_storage(url), "s", direction="maximize",
                   config={**config, "flash": 2000}, trials=5, epochs=5, seed=0)


def test_footprint_lower_bound_margins():
    fp = Footprint(flash=10000, ram=1000, instructions_per_step=5000.0,
                   instructions_per_step_max=5100, cycles_per_step_max=7000.0)
    low = fp.lower_bound()
    assert low.flash == 9200 and low.ram == 900 and low.instructions_per_step_max == 4590
    assert low.cycles_per_step_max == pytest.approx(6300.0)
    assert fp.at_least(low) and not _fp(10000, 1000, 6000.0, 5100).at_least(low)
