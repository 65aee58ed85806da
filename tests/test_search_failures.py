"""A search worker's trial that fails or is stopped, on a real Optuna study in SQLite.

The objective is replaced by one that raises (fault injection: the study, the
queue, the requeueing and the report are the real ones). Two cases once seen in a
clean-clone run: a Ctrl-C inside a TensorFlow scope arrived as TensorFlow's own
RuntimeError and the slot was lost; and a failed trial was counted as trained.
"""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import optuna
import pytest
from elman.search import report, worker
from elman.search import study as studies
from optuna.trial import TrialState

from elman import cli as elman_cli

PARAMS = {"units": 8}


@pytest.fixture
def study(tmp_path, monkeypatch):
    storage = studies.open_storage(studies.local_url(tmp_path))
    s = studies.open_study(storage, "t", direction="maximize", config={"data": "x"}, trials=2,
                           epochs=3, seed=0)
    signal.signal(signal.SIGINT, elman_cli.on_interrupt)  # as the worker's main() does
    monkeypatch.setattr(elman_cli, "_interrupted", False)
    yield s
    signal.signal(signal.SIGINT, signal.default_int_handler)


def ctx():
    return SimpleNamespace(data=SimpleNamespace(worst=0.0))


def objective(fail_numbers: set[int], stop_numbers: set[int] = frozenset()):
    def run(trial, _ctx):
        trial.suggest_int("units", 4, 12)
        if trial.number in stop_numbers:
            try:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, delivered in this frame
            except KeyboardInterrupt:
                # what TensorFlow's scope exit did with it
                raise RuntimeError("Exiting variable_creator_scope without proper nesting."
                                   ) from None
        if trial.number in fail_numbers:
            raise ValueError(f"trial {trial.number} broke")
        return 0.5 + trial.number / 100
    return run


def entries(study):
    trials = study.get_trials(deepcopy=False)
    return {t.number: report.trial_entry(t, report.retried_numbers(trials)) for t in trials}


def test_a_stop_turned_into_a_library_error_is_an_interruption_and_requeues_the_slot(
        study, monkeypatch):
    monkeypatch.setattr(worker, "run_trial", objective(set(), stop_numbers={0}))
    with pytest.raises(KeyboardInterrupt):
        worker.work(study, ctx())
    e = entries(study)
    assert e[0]["state"] == "interrupted" and "error" not in e[0]
    waiting = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    assert sorted(t.user_attrs["slot"] for t in waiting) == [0, 1]
    assert [t.user_attrs.get("retry_of") for t in waiting if t.user_attrs["slot"] == 0] == [0]
    # the rerun (a new worker process: no SIGINT received) trains both slots
    monkeypatch.setattr(elman_cli, "_interrupted", False)
    assert worker.work(study, ctx()) == 2
    done = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["slot"] for t in done) == [0, 1]


def test_a_failed_trial_runs_again_and_counts_as_trained_only_when_a_retry_succeeds(
        study, monkeypatch):
    monkeypatch.setattr(worker, "run_trial", objective({0}))
    worker.work(study, ctx())
    trials = study.get_trials()
    by_number = {t.number: t for t in trials}
    assert by_number[0].state == TrialState.FAIL
    assert by_number[0].user_attrs["error"] == "ValueError: trial 0 broke"
    retry = [t for t in trials if t.user_attrs.get("retry_of") == 0]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    assert retry[0].user_attrs["slot"] == 0 and retry[0].params == by_number[0].params
    assert entries(study)[0]["state"] == "failed"  # retried, but not an interruption
    assert studies.failed_slots(study.get_trials(deepcopy=False), 2) == []


def test_a_slot_that_fails_every_attempt_is_reported_failed_not_trained(study, monkeypatch):
    monkeypatch.setattr(worker, "run_trial", objective(set(range(100))))
    worker.work(study, ctx())
    trials = study.get_trials()
    assert [t.state for t in trials].count(TrialState.FAIL) == 2 * worker.MAX_ATTEMPTS
    assert all(t.state == TrialState.FAIL for t in trials)
    assert studies.failed_slots(trials, 2) == [0, 1]
    built = report.build_report(study, {}, budget={}, validation="v", metric_name="accuracy",
                                direction="maximize", best_dir=None)
    assert built["trained"] == 0 and built["failed_slots"] == [0, 1] and built["best"] is None
    assert built["counts"] == {"failed": 4}
    # a rerun of the same command gives each failed slot one more attempt
    assert studies.requeue_failed(study) == 2
    monkeypatch.setattr(worker, "run_trial", objective(set()))
    assert worker.work(study, ctx()) == 2
    trials = study.get_trials(deepcopy=False)
    assert studies.failed_slots(trials, 2) == []
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 2
    assert optuna.__version__  # the real Optuna, not a stand-in
