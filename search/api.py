"""``search_run``: the most accurate model that fits a microcontroller, found by Optuna.

The command's process checks everything that would fail late (options, the Arm
toolchain, the data, and whether the smallest model of the space fits at all:
an over-tight budget is one error and no trial), opens or joins the study,
starts ``jobs`` worker processes (:mod:`elman.search.worker`), prints each
trial as it finishes, and at the end writes ``search_report.json``,
``search.html`` and ``SEARCH_DIR/best``.

A local search (no ``--storage``) keeps its study in ``SEARCH_DIR/study.db``;
every search holds ``SEARCH_DIR``'s lock (``elman.run_lock``). Rerunning the same
command after Ctrl-C or a crash continues the study (trials left running are failed and their slots
requeued, finished ones stay). With ``--storage URL`` (PostgreSQL) any number of
``elman search`` processes on any machines join one study; each waits until
the study is finished, then writes the report.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from elman.search import space
from elman.search.budget import Budget
from elman.search.trial import TRIALS_DIR

from elman import __version__
from elman.errors import ElmanError
from elman.files import dumps_json, staged_outputs
from elman.run_lock import locked

POLL_S = 2.0
LOG_DIR = "logs"
HTML = "search.html"


@dataclass(frozen=True)
class SearchOptions:
    data: str = "sensor:basicmotions"
    cpu: str = "cortex-m0plus"
    flash: str | None = None
    ram: str | None = None
    latency: str | None = None
    clock: str | None = None
    trials: int = 20
    jobs: int = 1
    storage: str | None = None
    study: str = "elman-search"
    opt: str = "O2"
    epochs: int = 30
    min_units: int = 4
    max_units: int = 128
    max_layers: int = 3
    min_lr: float = 1e-3
    max_lr: float = 1e-2
    seed: int = 0
    states: str = ",".join(space.STATES)  # state widths searched: int8, int16 or both


def _check(options: SearchOptions) -> Budget:
    from elman.firmware_codegen.arm.toolchain import check_cpu_opt, find_toolchain

    for name in ("trials", "jobs", "epochs"):
        if getattr(options, name) < 1:
            raise ElmanError(f"--{name} must be >= 1, got {getattr(options, name)}")
    check_cpu_opt(options.cpu, options.opt)
    budget = Budget.parse(options.cpu, options.flash, options.ram, options.latency,
                          options.clock)
    find_toolchain()
    return budget


def stored_config(options: SearchOptions, budget: Budget) -> dict[str, Any]:
    """The options every worker of one study must share (stored in the study)."""
    return {"data": options.data, "cpu": budget.cpu, "flash": budget.flash, "ram": budget.ram,
            "latency_us": budget.latency_us, "clock_hz": budget.clock_hz, "opt": options.opt,
            "epochs": options.epochs, "min_units": options.min_units,
            "max_units": options.max_units, "max_layers": options.max_layers,
            "min_lr": options.min_lr,
            "max_lr": options.max_lr, "seed": options.seed,
            "states": list(space.parse_states(options.states)),
            "states_requested": list(space.parse_states(options.states)),
            "elman": __version__}


def usable_states(ctx: Any, err: TextIO) -> tuple[str, ...]:
    """The requested state widths whose smallest model builds on the target and is
    bit-exact there (a core whose kernels lack one width drops it, said on ``err``)."""
    from elman.targets.registry import get_target

    from elman.errors import ToolchainError, VerificationError

    usable = []
    smallest = space.smallest_shapes(ctx.limits, ctx.data.task)[0]
    built = get_target(ctx.budget.cpu).state_bits  # the widths the core's kernels build
    for state in ctx.limits.states:
        if space.STATE_BITS[state] not in built:
            print(f"state {state} is not searched: {ctx.budget.cpu}'s kernels build the "
                  f"{', '.join(f'int{b}' for b in built)} state only", file=err, flush=True)
            continue
        try:
            ctx.estimate({**smallest, "state": state})
        except (ToolchainError, VerificationError) as exc:
            reason = str(exc).strip().splitlines()[0]
            print(f"state {state} is not searched: it does not build on {ctx.budget.cpu} "
                  f"({reason})", file=err, flush=True)
        else:
            usable.append(state)
    if not usable:
        raise ElmanError(f"no state width of --states {','.join(ctx.limits.states)} builds on "
                         f"{ctx.budget.cpu}")
    return tuple(usable)


def check_space_fits(ctx: Any) -> None:
    """Refuse a budget that even the smallest model of the space exceeds (no trial run)."""
    found = []
    for params in space.smallest_shapes(ctx.limits, ctx.data.task):
        est = ctx.estimate(params)
        if not ctx.budget.exceeded(est.lower_bound()):
            return
        found.append((params, est))
    params, est = min(found, key=lambda pe: pe[1].flash)
    over = ctx.budget.exceeded(est)
    raise ElmanError(
        f"no model in the search space fits {ctx.budget.describe()}: the smallest "
        f"({space.describe(params)}) needs {'; '.join(over)} (measured on a random-weight "
        f"model of that shape, -{ctx.opt}); raise the budget or lower --min-units")


def _start_workers(jobs: int, url: str, study: str, search_dir: Path) -> list[subprocess.Popen]:
    logs = search_dir / LOG_DIR
    logs.mkdir(exist_ok=True)
    from elman.search.study import STORAGE_ENV

    env = {**os.environ, STORAGE_ENV: url}
    workers = []
    for i in range(jobs):
        log = open(logs / f"worker-{os.getpid()}-{i}.log", "ab")  # noqa: SIM115 - closed below
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "elman.search.worker", "--study", study,
             "--search-dir", str(search_dir), "--parent", str(os.getpid())],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env))
        log.close()
    return workers


class _Progress:
    """Prints each trial once when it ends, and a status line when the counts change."""

    def __init__(self, out: TextIO, err: TextIO):
        self.out, self.err = out, err
        self.shown: set[int] = set()
        self.status = ""

    def update(self, study: Any, slots: int) -> None:
        from elman.search.report import retried_numbers, table_header, table_row, trial_entry

        trials = study.get_trials(deepcopy=False)
        entries = [trial_entry(t, retried_numbers(trials)) for t in trials]
        done = [e for e in entries if e["state"] not in ("running", "waiting")]
        for e in sorted(done, key=lambda e: e["number"]):
            if e["number"] not in self.shown:
                if not self.shown:
                    print(table_header(), file=self.out, flush=True)
                self.shown.add(e["number"])
                print(table_row(e), file=self.out, flush=True)
        trained = sum(e["state"] in ("complete", "pruned") for e in entries)
        failed = sum(e["state"] == "failed" for e in entries)
        running = sum(e["state"] == "running" for e in entries)
        status = (f"[{trained}/{slots} trials trained, {running} running"
                  + (f", {failed} failed (see {LOG_DIR}/)" if failed else "") + "]")
        if status != self.status:
            self.status = status
            print(status, file=self.err, flush=True)


def search_run(search_dir: Path | str, options: SearchOptions, *, out: TextIO | None = None,
               err: TextIO | None = None) -> dict[str, Any]:
    """Run (or continue, or join) a search; returns the report (see the module docstring)."""
    from elman.search import study as studies
    from elman.search.validation import carve
    from elman.search.worker import context

    from elman.commands import command_line  # elman.commands registers this module's CLI

    out, err = out or sys.stdout, err or sys.stderr
    search_dir = Path(search_dir)
    budget = _check(options)
    config = stored_config(options, budget)
    data = carve(options.data)
    ctx = context(config, search_dir, data)
    print(f"elman search: {options.data} on {budget.describe()}; objective: the quantized "
          f"model's validation {data.metric_name} ({data.description})", file=err, flush=True)
    states = usable_states(ctx, err)
    if list(states) != config["states"]:
        config = {**config, "states": list(states)}
        ctx = context(config, search_dir, data)
    check_space_fits(ctx)
    if search_dir.exists() and not search_dir.is_dir():
        raise ElmanError(f"{search_dir} is not a directory")
    local = options.storage is None
    # one elman search per SEARCH_DIR (the run directories' lock: it also says who holds
    # it, and is released by the kernel when the process dies)
    with locked(search_dir, command_line("search", search_dir), create=True, need_mb=50):
        if local and not (search_dir / studies.DB_FILE).exists() and any(
                (search_dir / TRIALS_DIR).glob("*")):
            raise ElmanError(f"{search_dir} holds trials but no {studies.DB_FILE}: use an "
                             "empty directory for a new search")
        url = studies.local_url(search_dir) if local else options.storage
        storage = studies.open_storage(url)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the table says what happens
        study = studies.open_study(storage, options.study, direction=data.direction,
                                   config=config, trials=options.trials,
                                   epochs=options.epochs, seed=None)
        if local:
            requeued = studies.fail_running(study)
            if requeued:
                print(f"{requeued} trial(s) interrupted earlier: their slots run again",
                      file=err, flush=True)
            retried = studies.requeue_failed(study)
            if retried:
                print(f"{retried} slot(s) whose trials failed earlier run once more",
                      file=err, flush=True)
        progress = _Progress(out, err)
        workers = _start_workers(options.jobs, url, options.study, search_dir)
        try:
            _monitor(study, workers, progress, local)
        except KeyboardInterrupt:
            _stop(workers)
            _write_outputs(study, config, ctx, search_dir, budget)
            raise
        report = _write_outputs(study, config, ctx, search_dir, budget)
    failed = [w.returncode for w in workers if w.returncode not in (0, 130)]
    if failed and report["counts"].get("waiting"):
        raise ElmanError(f"search workers failed (exit {failed}); see {search_dir / LOG_DIR}")
    return report


def _monitor(study: Any, workers: list[subprocess.Popen], progress: _Progress,
             local: bool) -> None:
    from elman.search import study as studies
    from optuna.trial import TrialState

    while any(w.poll() is None for w in workers):
        progress.update(study, studies.slot_count(study))
        time.sleep(POLL_S)
    if not local:  # other machines' workers: wait for their trials (dead ones go stale)
        def unfinished() -> bool:
            return bool(study.get_trials(deepcopy=False,
                                         states=(TrialState.RUNNING, TrialState.WAITING)))
        while unfinished():
            progress.update(study, studies.slot_count(study))
            import optuna

            optuna.storages.fail_stale_trials(study)
            time.sleep(POLL_S)
    progress.update(study, studies.slot_count(study))


def _stop(workers: list[subprocess.Popen], wait_s: float = 30.0) -> None:
    """After Ctrl-C: let the workers record their interrupted trials, then end them."""
    import signal

    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGINT)
    deadline = time.monotonic() + wait_s
    for w in workers:
        try:
            w.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()


def _write_outputs(study: Any, config: dict[str, Any], ctx: Any, search_dir: Path,
                   budget: Budget) -> dict[str, Any]:
    from elman.search import html, report

    def build(best_dir: Path | None) -> dict[str, Any]:
        return report.build_report(study, config, budget=budget.to_dict(),
                                   validation=ctx.data.description,
                                   metric_name=ctx.data.metric_name,
                                   direction=ctx.data.direction, best_dir=best_dir)

    first = build(None)
    best_dir = report.copy_best(first["best"], search_dir)
    final = build(best_dir)
    with staged_outputs(search_dir) as stage:
        stage.write_text(report.REPORT_JSON, dumps_json(final))
        stage.write_text(HTML, html.render(final))
    return final
