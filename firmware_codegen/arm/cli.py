"""`elman mcu`: Cortex-M builds, flash/RAM sizes, emulated runs, bit-exactness."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from elman.firmware_codegen.arm.api import (
    DEFAULT_CPUS,
    DEFAULT_OPTS,
    DEFAULT_PROFILES,
    DEFAULT_SEQUENCES,
)


def mcu(
    run_dir: Annotated[Path, typer.Argument(help="Run directory with model_int8.tflite.")],
    cpu: Annotated[list[str] | None, typer.Option(
        help="Core to build for (cortex-m0plus, cortex-m4, cortex-m7); repeat for several "
             f"(default: {', '.join(DEFAULT_CPUS)}).")] = None,
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
) -> None:
    """Build the model's C for Cortex-M cores; report flash/RAM and emulated instruction counts,
    proving every step bit-exact with the simulator (writes RUN_DIR/mcu_report.json)."""
    from elman.firmware_codegen.arm.api import format_table, mcu_run

    report = mcu_run(run_dir, cpus=tuple(cpu or DEFAULT_CPUS), opts=tuple(opt or DEFAULT_OPTS),
                     profiles=tuple(profile or DEFAULT_PROFILES), limit=limit, prefix=prefix)
    typer.echo(f"{report['data']['description']}; {report['model']['macs_per_step']} MACs/step")
    typer.echo(format_table(report))
    typer.echo(f"wrote {Path(run_dir) / 'mcu_report.json'}")
