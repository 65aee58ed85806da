"""`elman mcu`: builds for every registered core, flash/RAM sizes, emulated runs, exact
instruction counts, estimated cycles and time at a clock, bit-exactness."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from elman.firmware_codegen.arm.api import (
    DEFAULT_OPTS,
    DEFAULT_PROFILES,
    DEFAULT_SEQUENCES,
)
from elman.targets import TARGETS


def mcu(
    run_dir: Annotated[Path, typer.Argument(help="Run directory with model_int8.tflite.")],
    cpu: Annotated[list[str] | None, typer.Option(
        help=f"Core to build for ({', '.join(TARGETS)}; arduino-uno is the atmega328p); "
             "repeat for several (default: every core the model fits).")] = None,
    opt: Annotated[list[str] | None, typer.Option(
        help=f"Optimization level (O2, Os); repeat for several (default: "
             f"{', '.join(DEFAULT_OPTS)}).")] = None,
    profile: Annotated[list[str] | None, typer.Option(
        help=f"Arithmetic profile (tflm, tflite); repeat for several (default: "
             f"{', '.join(DEFAULT_PROFILES)}).")] = None,
    limit: Annotated[int, typer.Option(
        min=1, help="Held-out sequences to run on each emulated core.")] = DEFAULT_SEQUENCES,
    prefix: Annotated[str, typer.Option(help="C identifier prefix of the generated code.")]
    = "elman",
    clock: Annotated[str | None, typer.Option(
        help="Core clock for the latency in time (e.g. 64MHz, 480MHz, 16000000; default: "
             "64MHz, the Uno's 16MHz); cycles come from each core's cycle model (exact on "
             "the Uno).")] = None,
) -> None:
    """Build the model's C for microcontroller cores; report flash/RAM, emulated instruction
    counts, estimated cycles and microseconds per step at --clock, proving every step
    bit-exact with the simulator (writes RUN_DIR/mcu_report.json)."""
    from elman.firmware_codegen.arm.api import format_table, mcu_run

    report = mcu_run(run_dir, cpus=tuple(cpu) if cpu else None, opts=tuple(opt or DEFAULT_OPTS),
                     profiles=tuple(profile or DEFAULT_PROFILES), limit=limit, prefix=prefix,
                     clock=clock)
    typer.echo(f"{report['data']['description']}; {report['model']['macs_per_step']} MACs/step")
    typer.echo(format_table(report))
    typer.echo(f"wrote {Path(run_dir) / 'mcu_report.json'}")
