"""A search worker: claims enqueued trials of the study and runs them until none is left.

``elman search`` starts ``--jobs`` of these as processes
(``python -m elman.search.worker``); each reads the search's options from the
study itself, so a worker needs only the storage URL, the study name and a
directory for its trials' run directories.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

import optuna
from elman.search import space
from elman.search import study as studies
from elman.search.budget import Budget
from elman.search.space import SpaceLimits
from elman.search.trial import Rejected, TrialContext, run_trial
from elman.search.validation import SearchData, carve
from optuna.trial import TrialState

from elman import cli as elman_cli

MAX_RESAMPLES = 50  # samples in a row that cannot fit before a slot gives up
MAX_ATTEMPTS = 2  # a slot whose trial fails (an error, not a stop) runs at most this often



def context(config: dict[str, Any], search_dir: Path, data: SearchData | None = None
            ) -> TrialContext:
    """The trial context of a search's stored options."""
    data = data or carve(config["data"])
    train = data.train
    limits = SpaceLimits(
        min_units=config["min_units"], max_units=config["max_units"],
        max_layers=config["max_layers"],
        min_lr=config["min_lr"], max_lr=config["max_lr"],
        timesteps=getattr(train, "timesteps", 0),
        equal_length=getattr(train, "equal_length", True),
        states=tuple(config.get("states", space.STATES)))
    budget = Budget(cpu=config["cpu"], flash=config["flash"], ram=config["ram"],
                    latency_us=config["latency_us"], clock_hz=config["clock_hz"])
    return TrialContext(data=data, budget=budget, limits=limits, opt=config["opt"],
                        epochs=config["epochs"], search_dir=search_dir, seed=config["seed"])


def run_slot(study: optuna.Study, trial: optuna.Trial, ctx: TrialContext) -> None:
    """Run one slot to its end: trained (complete or pruned), failed, or given up."""
    slot = trial.user_attrs[studies.SLOT_ATTR]
    for _ in range(MAX_RESAMPLES):
        try:
            with studies.Heartbeat(study, trial):
                value = run_trial(trial, ctx)
        except Rejected:
            study.tell(trial, ctx.data.worst)  # infeasible: its constraints are > 0
            trial = studies.new_attempt(study, slot, trial.number)
            continue
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
        except KeyboardInterrupt:
            _stopped(study, trial)
            raise
        except Exception as exc:
            if elman_cli.interrupted():  # a stop a library's cleanup turned into its error
                _stopped(study, trial)
                raise KeyboardInterrupt from exc
            # a failed trial is reported; its slot runs again (same parameters) until it
            # has failed MAX_ATTEMPTS times, and the search goes on
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}".splitlines()[0])
            traceback.print_exc()
            frozen = study.tell(trial, state=TrialState.FAIL)
            if studies.failed_attempts(study, slot) < MAX_ATTEMPTS:
                studies.requeue(study, frozen)
        else:
            study.tell(trial, value)
        return
    trial.set_user_attr("error", f"{MAX_RESAMPLES} samples in a row could not fit the budget")
    study.tell(trial, state=TrialState.FAIL)


def _stopped(study: optuna.Study, trial: optuna.Trial) -> None:
    """An interrupted trial: failed, marked, and its slot put back in the queue."""
    try:
        trial.set_user_attr("interrupted", True)
    except optuna.exceptions.UpdateFinishedTrialError:
        return  # it had finished before the stop
    frozen = study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    studies.requeue(study, frozen)


def work(study: optuna.Study, ctx: TrialContext) -> int:
    """Claim and run slots until the queue is empty; returns how many this worker ran."""
    done = 0
    while (trial := studies.claim(study)) is not None:
        run_slot(study, trial, ctx)
        done += 1
    return done


def _die_with_parent(parent: int) -> None:
    """Linux: SIGKILL this worker when the ``elman search`` that started it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m elman.search.worker")
    parser.add_argument("--storage", default=os.environ.get(studies.STORAGE_ENV),
                        help=f"study storage URL (default: ${studies.STORAGE_ENV})")
    parser.add_argument("--study", required=True)
    parser.add_argument("--search-dir", required=True, type=Path)
    parser.add_argument("--parent", type=int, default=0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if not args.storage:
        parser.error(f"--storage or ${studies.STORAGE_ENV} is required")
    if args.parent:
        _die_with_parent(args.parent)
    signal.signal(signal.SIGINT, elman_cli.on_interrupt)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = studies.open_storage(args.storage)
    study = optuna.load_study(study_name=args.study, storage=storage)
    config = study.user_attrs[studies.CONFIG_ATTR]
    study = optuna.load_study(study_name=args.study, storage=storage,
                              sampler=studies.sampler(args.seed),
                              pruner=studies.pruner(config["epochs"]))
    try:
        work(study, context(config, args.search_dir))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
