"""One search trial of a character model: embedding and BPTT are searched, the objective is
the int8 model's perplexity on validation text carved from the training text."""

from __future__ import annotations

import json
import math

import optuna
from elman.search.budget import Budget
from elman.search.space import SpaceLimits
from elman.search.trial import TrialContext, run_trial
from elman.search.validation import carve

from elman import rundir


def test_a_text_trial_trains_quantizes_and_scores_int8_perplexity(tmp_path):
    from elman.data.text_corpus import fortunes_split

    train, _ = fortunes_split()
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(train[:30_000], encoding="utf-8")
    data = carve(f"text:{corpus}")
    assert data.direction == "minimize" and data.metric_name == "perplexity"
    assert len(data.ids_val) >= 1000
    ctx = TrialContext(data=data, budget=Budget(cpu="cortex-m0plus", flash=200 * 1024),
                       limits=SpaceLimits(min_units=8, max_units=16, states=("int8",)),
                       opt="O2", epochs=1, search_dir=tmp_path / "search")
    # a seeded sampler: the trial's shape (and so its one-epoch perplexity) is the same on
    # every run; an unseeded one drew a model that one epoch left at uniform (82.07 > 82)
    study = optuna.create_study(direction="minimize",
                                sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    metric = run_trial(trial, ctx)
    params = trial.params
    assert params["embedding"] in (8, 16, 32) and params["bptt"] in (16, 32, 64)
    assert 1.0 < metric < len(data.train.vocab) and math.isfinite(metric)
    attrs = trial.user_attrs
    run_dir = ctx.run_dir(trial.number)
    spec = json.loads((run_dir / rundir.DATA_SPEC).read_text())
    assert "search validation" in spec["search_validation"]
    mcu = json.loads((run_dir / rundir.MCU_REPORT).read_text())["builds"][0]
    assert attrs["measured"]["flash"] == mcu["flash"] and attrs["measured"]["ram"] == mcu["ram"]
    assert attrs["metric"] == metric
    # Optuna's constraints of the trial are the measured ones (set once, after measuring)
    frozen = study.trials[0]
    assert frozen.constraints["flash"] == (mcu["flash"] - 200 * 1024) / (200 * 1024)
    assert frozen.constraints["latency"] == 0.0  # no latency budget
