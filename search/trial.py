"""One trial: suggest a model, check it fits, train, quantize, score the int8 model, measure.

:func:`run_trial` is the objective each worker runs on an Optuna trial:

1. the sampler suggests every dimension of :mod:`elman.search.space`;
2. the footprint of a random-weight model of that shape is measured on the
   target (cached per shape); if even its lower bound exceeds the budget the
   trial raises :class:`Rejected` without training;
3. ``train_run`` trains into ``SEARCH_DIR/trials/NNNN`` on the training data
   minus the validation split, reporting the float validation metric after
   every epoch so that Optuna's pruner can stop a weak trial;
4. ``quantize_run`` writes the quantized model (int8, or the int16 state of
   ``state int16``); the objective is its validation metric in the bit-exact
   simulator of the trial's profile;
5. ``mcu_run`` measures flash, RAM and instructions per step on the target
   (the trial's ``mcu_report.json``), which decide whether the trial fits.

What the report needs is stored on the trial as user attributes.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elman.search import space
from elman.search.budget import Budget
from elman.search.footprint import Footprint, ModelShape, estimate, measure
from elman.search.validation import SearchData, float_metric, quantized_metric

from elman import rundir
from elman.errors import ElmanError

TRIALS_DIR = "trials"


class Rejected(Exception):
    """The trial's model cannot fit the budget: it was not trained."""


@dataclass
class TrialContext:
    """Everything a worker needs to run trials of one search."""

    data: SearchData
    budget: Budget
    limits: space.SpaceLimits
    opt: str
    epochs: int
    search_dir: Path
    seed: int = 0
    estimates: dict[tuple, Footprint] = field(default_factory=dict)

    def shape(self, params: dict[str, Any]) -> ModelShape:
        channels, outputs, vocab = self.data.dims()
        per_step = self.data.y_val is not None and self.data.y_val.ndim == 2
        return ModelShape(task=self.data.task, input_dim=params.get("embedding") or channels,
                          output_dim=outputs, units=params["units"],
                          layers=params.get("layers", 1), vocab_size=vocab,
                          every_step=True if per_step else None,
                          state_bits=space.STATE_BITS[params.get("state", "int8")])

    def estimate(self, params: dict[str, Any]) -> Footprint:
        key = space.shape_of(params, self.data.task)
        if key not in self.estimates:
            self.estimates[key] = estimate(self.shape(params), cpu=self.budget.cpu,
                                           opt=self.opt, profile=params["profile"])
        return self.estimates[key]

    def run_dir(self, number: int) -> Path:
        return self.search_dir / TRIALS_DIR / f"{number:04d}"


def footprint_attrs(fp: Footprint, budget: Budget) -> dict[str, Any]:
    return {**fp.to_dict(), "latency_us": budget.latency_of(fp)}


def set_constraints(trial: Any, violations: dict[str, float]) -> None:
    """Optuna's constraints (its samplers prefer trials whose values are all <= 0); Optuna
    keeps the first value of each, so a trial sets them once, when its state is known."""
    for name, value in violations.items():
        trial.set_constraint(name, value)


def run_trial(trial: Any, ctx: TrialContext) -> float:
    """The objective (see the module docstring); raises Rejected or optuna.TrialPruned."""
    started = time.perf_counter()
    try:
        return _run_trial(trial, ctx)
    finally:
        trial.set_user_attr("seconds", time.perf_counter() - started)


def _run_trial(trial: Any, ctx: TrialContext) -> float:
    import optuna
    from elman.quantize.api import quantize_run
    from elman.quantize.reader import read_ir
    from elman.train.api import train_run
    from elman.train.config import TrainConfig

    timings: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            timings[name] = round(time.perf_counter() - t0, 2)
            trial.set_user_attr("timings", timings)

    task, budget = ctx.data.task, ctx.budget
    params = space.suggest(trial, ctx.limits, task)
    train_options, build = space.split(params, task)
    profile = build["profile"]
    trial.set_user_attr("host", socket.gethostname())
    est = timed("estimate", lambda: ctx.estimate(params))
    trial.set_user_attr("estimate", footprint_attrs(est, budget))
    estimated = budget.violations(est)
    low = est.lower_bound()
    over = budget.exceeded(low)
    if over:
        trial.set_user_attr("rejected", "; ".join(over))
        set_constraints(trial, estimated)
        raise Rejected("; ".join(over))

    run_dir = ctx.run_dir(trial.number)
    if run_dir.exists():  # never overwrite: a slot that runs again gets a new trial number
        raise ElmanError(f"{run_dir} already exists (a trial of another study in this "
                         "directory?)")
    trial.set_user_attr("run_dir", str(run_dir))

    def on_epoch(row: dict, trainer: Any) -> None:
        value = float_metric(trainer, ctx.data)
        trial.set_user_attr("float_metric", value)
        trial.report(value, int(row["epoch"]))
        if trial.should_prune():
            set_constraints(trial, estimated)  # a pruned trial is never measured
            raise optuna.TrialPruned(f"epoch {row['epoch']}: validation {value:.4g}")

    config = TrainConfig(**train_options, epochs=ctx.epochs, seed=ctx.seed, diagnostics=False,
                         baseline=False)
    timed("train", lambda: train_run(ctx.data.train, run_dir, config, progress=False,
                                     on_epoch=on_epoch))
    timed("quantize", lambda: quantize_run(run_dir, progress=False, state=build["state"]))
    ir = read_ir(run_dir / rundir.MODEL_TFLITE)
    metric = timed("quantized_metric", lambda: quantized_metric(ir, profile, ctx.data))
    measured = timed("mcu", lambda: measure(run_dir, cpu=budget.cpu, opt=ctx.opt,
                                            profile=profile))
    trial.set_user_attr("metric", metric)
    trial.set_user_attr("measured", footprint_attrs(measured, budget))
    trial.set_user_attr("bound_held", measured.at_least(low))
    set_constraints(trial, budget.violations(measured))
    exceeded = budget.exceeded(measured)
    trial.set_user_attr("feasible", not exceeded)
    if exceeded:
        trial.set_user_attr("over_budget", "; ".join(exceeded))
    return metric
