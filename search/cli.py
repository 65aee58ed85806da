"""`elman search`: the most accurate RNN that fits a microcontroller's flash, RAM and time."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from elman.search.api import SearchOptions

DEFAULTS = SearchOptions()


def search(
    search_dir: Annotated[Path, typer.Argument(
        help="Directory of the search: its study (study.db), trials/, best/, reports.")],
    data: Annotated[str, typer.Option(help="Data spec, as for elman train.")] = DEFAULTS.data,
    cpu: Annotated[str, typer.Option(
        help="Target core, any of elman's target registry (cortex-m0plus, cortex-m4, "
             "cortex-m7, cortex-m33, cortex-m55, rv32imc, ...).")] = DEFAULTS.cpu,
    flash: Annotated[str | None, typer.Option(
        help="Flash budget of the model: code + weights + tables, e.g. 32K.")] = None,
    ram: Annotated[str | None, typer.Option(
        help="RAM budget: static data + state + the step's deepest stack, e.g. 4K.")] = None,
    latency: Annotated[str | None, typer.Option(
        help="Time budget of the slowest step, e.g. 2ms (needs --clock).")] = None,
    clock: Annotated[str | None, typer.Option(
        help="Core clock, e.g. 64MHz: latency = the target's cycle model on the slowest "
             "step / clock.")] = None,
    trials: Annotated[int, typer.Option(
        help="Trials to train in the study (a sample that cannot fit is rejected before "
             "training and does not count).")] = DEFAULTS.trials,
    jobs: Annotated[int, typer.Option(
        help="Worker processes on this machine.")] = DEFAULTS.jobs,
    storage: Annotated[str | None, typer.Option(
        help="Study storage URL, e.g. postgresql://user:pw@host/db: workers on many machines "
             "join one study (default: SEARCH_DIR/study.db, this machine only).")] = None,
    study: Annotated[str, typer.Option(help="Study name in the storage.")] = DEFAULTS.study,
    opt: Annotated[str, typer.Option(help="Optimization level of the C (O2, Os).")]
    = DEFAULTS.opt,
    epochs: Annotated[int, typer.Option(
        help="Training epochs of each trial (weak trials are pruned earlier).")]
    = DEFAULTS.epochs,
    min_units: Annotated[int, typer.Option(help="Fewest units tried.")] = DEFAULTS.min_units,
    max_units: Annotated[int, typer.Option(help="Most units tried.")] = DEFAULTS.max_units,
    max_layers: Annotated[int, typer.Option(
        help="Most stacked layers tried (1 to 3; each of the trial's units).")]
    = DEFAULTS.max_layers,
    min_lr: Annotated[float, typer.Option(help="Lowest learning rate tried.")]
    = DEFAULTS.min_lr,
    max_lr: Annotated[float, typer.Option(help="Highest learning rate tried.")]
    = DEFAULTS.max_lr,
    seed: Annotated[int, typer.Option(help="Training seed of every trial.")] = DEFAULTS.seed,
    states: Annotated[str, typer.Option(
        help="State widths searched: int8, int16 (16x8: int16 state and activations, int8 "
             "weights) or int8,int16.")] = DEFAULTS.states,
) -> None:
    """Search units, layers, embedding, learning rate, BPTT window, arithmetic profile and
    state width for the best quantized validation metric within a microcontroller's flash,
    RAM and latency; writes SEARCH_DIR/search_report.json, search.html and best/ (a normal
    run directory). Rerun the same command to continue an interrupted search."""
    from elman.search.api import HTML, search_run
    from elman.search.report import REPORT_JSON, format_table

    options = SearchOptions(data=data, cpu=cpu, flash=flash, ram=ram, latency=latency,
                            clock=clock, trials=trials, jobs=jobs, storage=storage, study=study,
                            opt=opt, epochs=epochs, min_units=min_units, max_units=max_units,
                            max_layers=max_layers, min_lr=min_lr, max_lr=max_lr, seed=seed,
                            states=states)
    try:
        report = search_run(search_dir, options)
    except KeyboardInterrupt:
        typer.echo(f"interrupted: rerun the same command to continue the search in "
                   f"{search_dir}", err=True)
        raise typer.Exit(130) from None
    typer.echo("")
    typer.echo(format_table(report))
    best = report["best"]
    if best is None:
        typer.echo("no trained trial fits the budget")
    else:
        typer.echo(f"best: trial {best['number']} ({report['objective']['metric']} "
                   f"{best['metric']:.4g}; flash {best['flash']:,} B, RAM {best['ram']:,} B, "
                   f"{best['instructions_per_step_max']:,} instructions in the slowest step"
                   + (f", {best['cycles_per_step_max']:,.0f} cycles"
                      if best.get("cycles_per_step_max") else "")
                   + (f", {best['latency_us']:,.0f} us" if best["latency_us"] else "")
                   + f") -> {best['run_dir'] or best['trial_run_dir']}")
    typer.echo(f"wrote {Path(search_dir) / REPORT_JSON}, {Path(search_dir) / HTML}")
    if report["failed_slots"]:
        errors = sorted({e["error"] for e in report["trials"]
                         if e["state"] == "failed" and e.get("error")})
        typer.echo(f"error: {len(report['failed_slots'])} of {report['slots']} trial slots "
                   f"failed every attempt ({'; '.join(errors)}); see "
                   f"{Path(search_dir) / 'logs'}; rerun the same command to retry them",
                   err=True)
        raise typer.Exit(1)
