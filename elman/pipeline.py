"""`elman run`: train → quantize → codegen → verify → mcu → report.html, in one command.

:func:`run_pipeline` calls each stage's public function in order on one run
directory. A stage that fails raises its own :class:`~elman.errors.ElmanError`
(the CLI prints it as ``error: ...``, exit 1); the stages before it have
already committed their files (each stage writes atomically), so they stay for
inspection or for re-running the remaining stages by hand. Each stage prints a
line when it starts and one with its elapsed time when it ends (stderr); the
run ends with one summary (:mod:`elman.pipeline_summary`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from elman import rundir
from elman.errors import ElmanError

DEFAULT_DATA = "sensor:basicmotions"
DEFAULT_CPUS = ("cortex-m0plus", "cortex-m4")
DEFAULT_OPTS = ("O2",)
PROFILES = ("tflm", "tflite")


@dataclass(frozen=True)
class StageTiming:
    name: str
    seconds: float


class _Progress:
    """One line per stage on stderr: what starts, then how long it took."""

    def __init__(self, total: int, enabled: bool, stream: TextIO | None = None):
        self.total = total
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
            raise
        seconds = time.perf_counter() - start
        self.timings.append(StageTiming(name, seconds))
        self._say(f"[{index}/{self.total}] {name} done in {seconds:.1f} s")
        return result

    def _say(self, line: str) -> None:
        if self.enabled:
            print(line, file=self.stream, flush=True)


def run_pipeline(
    data: str,
    run_dir: Path | str,
    *,
    config: Any = None,
    prefix: str = "elman",
    profiles: Sequence[str] = PROFILES,
    cpus: Sequence[str] = DEFAULT_CPUS,
    opts: Sequence[str] = DEFAULT_OPTS,
    verify_limit: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every stage on ``run_dir``; return what each produced and how long it took.

    ``config`` is the :class:`elman.train.api.TrainConfig` (None: its defaults).
    The C is generated for ``profiles[0]``; ``verify`` checks every profile in
    ``profiles``; ``mcu`` builds for every cpu × opt.
    """
    from elman.firmware_codegen.api import codegen_run
    from elman.firmware_codegen.arm.api import mcu_run
    from elman.quantize.api import quantize_run
    from elman.report_html import build_report
    from elman.runtime.verify import verify_run
    from elman.train.api import train_run

    run_dir = Path(run_dir)
    profiles = tuple(profiles)
    if not profiles or any(p not in PROFILES for p in profiles):
        raise ElmanError(f"profiles must be among {', '.join(PROFILES)}, got {list(profiles)}")
    if not cpus:
        raise ElmanError("give at least one --cpu")
    steps = _Progress(total=6, enabled=progress)
    start = time.perf_counter()
    results: dict[str, Any] = {"run_dir": str(run_dir), "data": data}
    results["train"] = steps.run(
        "train", f"{data} → {rundir.MODEL_KERAS}",
        lambda: train_run(data, run_dir, config, progress=progress))
    results["quantize"] = steps.run(
        "quantize", f"int8 step model → {rundir.MODEL_TFLITE}",
        lambda: quantize_run(run_dir, progress=progress))
    results["codegen"] = [str(p) for p in steps.run(
        "codegen", f"C99 ({profiles[0]} profile, prefix {prefix}) → {rundir.CODE_DIR}/",
        lambda: codegen_run(run_dir, prefix=prefix, profile=profiles[0]))]
    results["verify"] = steps.run(
        "verify", f"bit-exactness, profiles {', '.join(profiles)} → {rundir.VERIFY_REPORT}",
        lambda: verify_run(run_dir, profiles=profiles, limit=verify_limit, progress=progress))
    results["mcu"] = steps.run(
        "mcu", f"Cortex-M builds ({', '.join(cpus)}) → {rundir.MCU_REPORT}",
        lambda: mcu_run(run_dir, cpus=tuple(cpus), opts=tuple(opts)))
    results["report"] = str(steps.run(
        "report", f"plots and tables → {rundir.REPORT_HTML}", lambda: build_report(run_dir)))
    results["timings"] = {t.name: round(t.seconds, 1) for t in steps.timings}
    results["seconds"] = round(time.perf_counter() - start, 1)
    return results


def run(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (created if missing).")],
    data: Annotated[str, typer.Option(help="sensor:NAME, text:fortunes, npz:PATH or text:PATH.")]
    = DEFAULT_DATA,
    units: Annotated[int | None, typer.Option(help="Hidden units (default: train's).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs (default: train's).")]
    = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: train's).")] = None,
    prefix: Annotated[str, typer.Option(help="C identifier prefix of the generated code.")]
    = "elman",
    profile: Annotated[str, typer.Option(
        help="Arithmetic profile: tflm, tflite, or both (C is generated for the first).")]
    = "both",
    cpu: Annotated[list[str] | None, typer.Option(
        help="Cortex-M cpu to build for; repeat for several.")] = None,
    opt: Annotated[list[str] | None, typer.Option(
        help="Optimization level (O2, Os); repeat for several.")] = None,
    limit: Annotated[int | None, typer.Option(
        help="Verify on at most this many held-out sequences (default: all).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress output.")] = False,
) -> None:
    """Run every stage on DATA: train, quantize, codegen, verify, mcu, and write report.html."""
    from elman.pipeline_summary import format_summary

    profiles = PROFILES if profile == "both" else (profile,)
    result = run_pipeline(
        data, run_dir, config=_train_config(units=units, epochs=epochs, seed=seed),
        prefix=prefix, profiles=profiles, cpus=tuple(cpu or DEFAULT_CPUS),
        opts=tuple(opt or DEFAULT_OPTS), verify_limit=limit, progress=not quiet)
    typer.echo(format_summary(result))


def _train_config(**overrides: Any) -> Any:
    """TrainConfig with the options the user gave; train's own defaults for the rest."""
    from elman.train.api import TrainConfig

    given = {k: v for k, v in overrides.items() if v is not None}
    return TrainConfig(**given) if given else None
