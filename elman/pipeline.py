"""`elman run`: train → quantize → codegen → verify → mcu → report.html, in one command.

:func:`run_pipeline` calls each stage's public function in order on one run
directory. Before the first stage it checks what would otherwise fail late
(the C prefix, the profiles, the cpus and optimization levels, the Arm
toolchain), and, with ``--from STAGE``, that the directory holds the outputs of
every stage before it, unchanged since they were written (:mod:`elman.provenance`).
The whole run holds the run directory's lock (:mod:`elman.run_lock`). A stage
that fails raises its own :class:`~elman.errors.ElmanError` (the CLI prints it
as ``error: ...``, exit 1); the stages before it have already committed their
files (each stage writes atomically), so they stay for inspection, and
``--from STAGE`` re-runs the chain from that stage on the same directory.
Outputs of later stages left by a previous run are removed by the commit of
the stage that replaces what they were made from (:mod:`elman.provenance`), so
a run directory never mixes a new model with an old report.
Each stage prints a line when it starts and one with its elapsed time when it
ends (stderr); the run ends with one summary (:mod:`elman.pipeline_summary`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from elman import provenance, rundir
from elman.errors import ElmanError
from elman.rundir import STAGES

DEFAULT_DATA = "sensor:basicmotions"
DEFAULT_CPUS = ("cortex-m0plus", "cortex-m4")
DEFAULT_OPTS = ("O2",)
PROFILES = ("tflm", "tflite")
# what a run starting after a stage needs from it (after train: what quantize reads, which
# `elman import` also writes; an imported model has no train_report.json)
PREREQUISITES = {
    "train": (rundir.MODEL_KERAS, rundir.DATA_SPEC),
    "quantize": (rundir.MODEL_TFLITE, rundir.QUANT_REPORT),
    "codegen": (rundir.CODE_DIR,),
    "verify": (rundir.VERIFY_REPORT,),
    "mcu": (rundir.MCU_REPORT,),
}


@dataclass(frozen=True)
class StageTiming:
    name: str
    seconds: float


class _Progress:
    """One line per stage on stderr: what starts, then how long it took."""

    def __init__(self, total: int, enabled: bool, run_dir: Path,
                 stream: TextIO | None = None):
        self.total = total
        self.run_dir = run_dir
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.timings: list[StageTiming] = []

    def run(self, name: str, what: str, fn: Callable[[], Any]) -> Any:
        index = len(self.timings) + 1
        self._say(f"[{index}/{self.total}] {name}: {what}")
        start = time.perf_counter()
        try:
            result = fn()
        except ElmanError:
            self._say(f"[{index}/{self.total}] {name} failed after "
                      f"{time.perf_counter() - start:.1f} s")
            if name != "train":
                self._say(f"the files of the stages before {name} are kept in {self.run_dir}; "
                          f"to resume: elman run --from {name} {self.run_dir}")
            raise
        seconds = time.perf_counter() - start
        self.timings.append(StageTiming(name, seconds))
        self._say(f"[{index}/{self.total}] {name} done in {seconds:.1f} s")
        return result

    def _say(self, line: str) -> None:
        if self.enabled:
            print(line, file=self.stream, flush=True)


def preflight(*, prefix: str, profiles: Sequence[str], cpus: Sequence[str],
              opts: Sequence[str], start: str) -> None:
    """Raise the stage's own error now for what would only fail after training."""
    from elman.firmware_codegen.arm.toolchain import check_cpu_opt, find_toolchain
    from elman.firmware_codegen.identifiers import validate_prefix

    if start not in STAGES:
        raise ElmanError(f"unknown stage {start!r}; choose one of {', '.join(STAGES)}")
    if not profiles or any(p not in PROFILES for p in profiles):
        raise ElmanError(f"profiles must be among {', '.join(PROFILES)}, got {list(profiles)}")
    if not cpus or not opts:
        raise ElmanError("give at least one cpu and one optimization level")
    validate_prefix(prefix)
    for cpu in cpus:
        for opt in opts:
            check_cpu_opt(cpu, opt)
    for cpu in cpus:
        find_toolchain(cpu)


def run_pipeline(
    data: str | None,
    run_dir: Path | str,
    *,
    config: Any = None,
    prefix: str = "elman",
    profiles: Sequence[str] = PROFILES,
    cpus: Sequence[str] = DEFAULT_CPUS,
    opts: Sequence[str] = DEFAULT_OPTS,
    verify_limit: int | None = None,
    start: str = "train",
    state: str = "int8",
    progress: bool = True,
) -> dict[str, Any]:
    """Run the stages from ``start`` on ``run_dir``; return each stage's report and timings.

    ``data`` is the dataset spec (None: ``sensor:basicmotions``; ignored unless
    ``start`` is ``train``, later stages read the run's ``data_spec.json``).
    ``config`` is the :class:`elman.train.api.TrainConfig` (None: its defaults).
    The C is generated for ``profiles[0]``; ``verify`` checks every profile in
    ``profiles``; ``mcu`` builds for every cpu × opt.
    """
    from elman.run_lock import locked

    run_dir = Path(run_dir)
    profiles, cpus, opts = tuple(profiles), tuple(cpus), tuple(opts)
    preflight(prefix=prefix, profiles=profiles, cpus=cpus, opts=opts, start=start)
    if start != "train" and not run_dir.is_dir():
        raise ElmanError(f"run directory {run_dir} does not exist: start from train")
    data = data or DEFAULT_DATA
    with locked(run_dir, f"elman run {run_dir}", create=start == "train"):
        check_prerequisites(run_dir, start)
        return _run_stages(data, run_dir, config=config, prefix=prefix, profiles=profiles,
                           cpus=cpus, opts=opts, verify_limit=verify_limit, start=start,
                           progress=progress, state=state)


def check_prerequisites(run_dir: Path, start: str) -> None:
    """Refuse to start at ``start`` unless every earlier stage's outputs are there, unchanged."""
    for stage in STAGES[:STAGES.index(start)]:
        missing = [name for name in PREREQUISITES[stage] if not (run_dir / name).exists()
                   or ((run_dir / name).is_dir() and not any((run_dir / name).iterdir()))]
        if missing:
            again = (f"elman run --data DATA {run_dir}" if stage == "train"
                     else f"elman run --from {stage} {run_dir}")
            made = "`elman train` or `elman import`" if stage == "train" else f"`elman {stage}`"
            raise ElmanError(f"cannot start at {start}: {run_dir} has no "
                             f"{', '.join(missing)} (made by {made}); "
                             f"start from {stage}: `{again}`")
    provenance.check_run(run_dir, [name for stage in STAGES[:STAGES.index(start)]
                                   for name in rundir.OUTPUTS[stage]])


def _run_stages(data: str, run_dir: Path, *, config: Any, prefix: str,
                profiles: tuple[str, ...], cpus: tuple[str, ...], opts: tuple[str, ...],
                verify_limit: int | None, start: str, progress: bool,
                state: str = "int8") -> dict[str, Any]:
    from elman.firmware_codegen.api import codegen_run
    from elman.firmware_codegen.arm.api import mcu_run
    from elman.quantize.api import quantize_run
    from elman.report_html import build_report
    from elman.train.api import train_run
    from elman.verify import verify_run

    stages: list[tuple[str, str, Callable[[], Any]]] = [
        ("train", f"{data} → {rundir.MODEL_KERAS}",
         lambda: train_run(data, run_dir, config, progress=progress)),
        ("quantize", f"{'int8' if state == 'int8' else '16x8 (int16 state)'} step model → "
                     f"{rundir.MODEL_TFLITE}",
         lambda: quantize_run(run_dir, progress=progress, state=state)),
        ("codegen", f"C99, profile {profiles[0]}, prefix {prefix} → {rundir.CODE_DIR}/",
         lambda: [str(p) for p in codegen_run(run_dir, prefix=prefix, profile=profiles[0])]),
        ("verify", f"simulator vs LiteRT, TFLite Micro, host C, emulated Cortex-M "
                   f"({', '.join(profiles)}) → {rundir.VERIFY_REPORT}",
         lambda: verify_run(run_dir, profiles=profiles, limit=verify_limit,
                            progress=progress)),
        ("mcu", f"{', '.join(cpus)} builds, emulated → {rundir.MCU_REPORT}",
         lambda: mcu_run(run_dir, cpus=cpus, opts=opts, profiles=profiles, prefix=prefix,
                         progress=progress)),
        ("report", f"plots and tables → {rundir.REPORT_HTML}",
         lambda: str(build_report(run_dir))),
    ]
    stages = stages[STAGES.index(start):]
    steps = _Progress(total=len(stages), enabled=progress, run_dir=run_dir)
    began = time.perf_counter()
    results: dict[str, Any] = {"run_dir": str(run_dir), "data": data if start == "train"
                               else _recorded_data(run_dir)}
    for name, what, fn in stages:
        results[name] = steps.run(name, what, fn)
    for name in STAGES[:STAGES.index(start)]:
        results[name] = _earlier_report(run_dir, name)
    results["timings"] = {t.name: round(t.seconds, 1) for t in steps.timings}
    results["seconds"] = round(time.perf_counter() - began, 1)
    return results


def _earlier_report(run_dir: Path, stage: str) -> Any:
    from elman.report_html import load_report

    name = rundir.REPORTS.get(stage)
    return None if name is None else load_report(run_dir, name)


def _recorded_data(run_dir: Path) -> str:
    import json

    try:
        return str(json.loads((run_dir / rundir.DATA_SPEC).read_text("utf-8"))["source"])
    except (OSError, ValueError, KeyError):
        return "?"


def run(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (created if missing).")],
    data: Annotated[str | None, typer.Option(
        help="sensor:NAME, ts:PATH, npz:PATH, csv:PATH, text:fortunes or text:PATH "
             "(default: sensor:basicmotions)."
    )] = None,
    units: Annotated[int | None, typer.Option(help="Hidden units (default: the task's).")]
    = None,
    layers: Annotated[int | None, typer.Option(
        help="Stacked SimpleRNN layers, 1-3 (default: 1).")] = None,
    embedding: Annotated[int | None, typer.Option(
        help="Embedding size, text (default: the task's).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs (default: the task's).")] = None,
    batch: Annotated[int | None, typer.Option(
        help="Sequences per update / parallel text streams (default: the task's).")] = None,
    bptt: Annotated[int | None, typer.Option(
        help="Truncated-BPTT window in steps (default: the task's).")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (default: the task's).")]
    = None,
    clip: Annotated[float | None, typer.Option(
        help="Gradient-norm clipping threshold, 0 disables (default: 1.0).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: 0).")] = None,
    minutes: Annotated[float | None, typer.Option(
        help="Stop training after this many minutes.")] = None,
    max_chars: Annotated[int | None, typer.Option(
        help="Text: train on the first N characters only (quick runs).")] = None,
    max_length: Annotated[int | None, typer.Option(
        help="Sequences: keep the last N samples of longer sequences (else a sequence over "
             "10x the median length is an error).")] = None,
    stride: Annotated[int | None, typer.Option(
        help="Sequences: read them at 1/k of their sampling rate (see --stride-mode). "
             "Default: 1, or for a median length over 128 samples the stride that brings it "
             "to at most 40 steps (a stack: 20).")] = None,
    stride_mode: Annotated[str | None, typer.Option(
        help="With a stride k: auto (the default: stack or mean, from the data; see `elman "
             "train --help`) | mean (a step is the mean of k samples) | sample (every k-th "
             "sample) | stack (the k samples side by side).")] = None,
    deltas: Annotated[str | None, typer.Option(
        help="Sequences: follow each sample with its first difference: auto (the default: "
             "from the data; see `elman train --help`) | on | off.")] = None,
    prefix: Annotated[str, typer.Option(help="C identifier prefix of the generated code.")]
    = "elman",
    profile: Annotated[str, typer.Option(
        help="Arithmetic profile: tflm, tflite, or both (the C is generated for the first).")]
    = "both",
    cpu: Annotated[list[str] | None, typer.Option(
        help="Cortex-M cpu to build for; repeat for several (default: cortex-m0plus, "
             "cortex-m4).")] = None,
    opt: Annotated[list[str] | None, typer.Option(
        help="Optimization level, O2 or Os; repeat for several (default: O2).")] = None,
    limit: Annotated[int | None, typer.Option(
        help="Verify on at most this many held-out sequences, text: steps (default: all).")] = None,
    start: Annotated[str, typer.Option(
        "--from", help=f"Start at this stage of an existing run: {', '.join(STAGES)}.")]
    = "train",
    state: Annotated[str, typer.Option(
        help="Width of activations and state: int8, or int16 (TFLite's 16x8 mode: int16 "
             "activations and state, int8 weights).")] = "int8",
    qat_weights: Annotated[bool | None, typer.Option(
        help="Train the last updates with the weights on the int8 grid, so that quantizing "
             "loses only activations and state (see `elman train --help`). Default: on with "
             "--state int16, off with int8.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress output.")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit with status 1 when an acceptance check is NOT met (int8 vs "
                         "float, float vs chance or vs a 3-gram, bit-exactness).")] = False,
) -> None:
    """Run every stage: train, quantize, codegen, verify, mcu; then write report.html.

    The summary shows every acceptance check, met or NOT met; --strict makes one
    NOT met an error (exit 1).

    Training takes the most common options here; for all of them run
    `elman train ... RUN_DIR`, then `elman run --from quantize RUN_DIR`.
    """
    from elman.pipeline_summary import checks_of, format_summary

    if profile not in (*PROFILES, "both"):
        raise ElmanError(f"unknown profile {profile!r}; choose tflm, tflite or both")
    if state not in ("int8", "int16"):
        raise ElmanError(f"unknown state width {state!r}; choose int8 or int16")
    profiles = PROFILES if profile == "both" else (profile,)
    config = _train_config(units=units, layers=layers, embedding=embedding, epochs=epochs,
                           batch=batch,
                           bptt=bptt, lr=lr, clip=clip, seed=seed, minutes=minutes,
                           max_chars=max_chars, max_length=max_length, stride=stride,
                           stride_mode=stride_mode, deltas=deltas,
                           qat_weights=qat_weights_default(state, qat_weights) or None,
                           ) if start == "train" else None
    result = run_pipeline(
        data, run_dir, config=config, prefix=prefix, profiles=profiles,
        cpus=tuple(cpu or DEFAULT_CPUS), opts=tuple(opt or DEFAULT_OPTS), verify_limit=limit,
        start=start, progress=not quiet, state=state)
    typer.echo(format_summary(result))
    failed = [c.name for c in checks_of(result) if not c.met]
    if strict and failed:
        raise ElmanError(f"{len(failed)} acceptance check{'s' if len(failed) > 1 else ''} NOT "
                         f"met (--strict): {', '.join(failed)}")


def qat_weights_default(state: str, given: bool | None) -> bool:
    """``elman run``'s --qat-weights: as given, else on for the int16 state (whose error
    against float is otherwise mostly the int8 weights')."""
    return state == "int16" if given is None else given


def _train_config(**overrides: Any) -> Any:
    """TrainConfig with the options the user gave; train's own defaults for the rest."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return None
    from elman.train.api import TrainConfig

    return TrainConfig(**given)
