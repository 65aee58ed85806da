"""`elman codegen RUN_DIR`: the run's int8 model as dependency-free C99 sources."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from elman.firmware_codegen.packages import Package


def codegen(
    run_dir: Annotated[Path, typer.Argument(help="Run directory with model_int8.tflite.")],
    prefix: Annotated[str, typer.Option(
        help="C identifier that starts every generated name (files, functions, macros); "
             "give each model of one firmware its own.")] = "elman",
    profile: Annotated[str, typer.Option(
        help="Arithmetic profile: tflm (bit-exact with TFLite Micro / CMSIS-NN rounding) or "
             "tflite (bit-exact with LiteRT's reference kernels).")] = "tflm",
    out: Annotated[Path | None, typer.Option(
        help="Output directory (default: RUN_DIR/c).")] = None,
    example: Annotated[bool, typer.Option(
        "--example/--no-example",
        help="Also write <prefix>_example.c: a main() that runs a fixed input sequence and "
             "checks the result against the simulator (a self-test for a new target), and "
             "<prefix>_qemu/: Cortex-M4 firmware over real held-out samples that prints PASS "
             "or FAIL; then print how to build and run each file.")] = False,
    package: Annotated[list[Package] | None, typer.Option(
        "--package",
        help="Also write a ready library next to the sources (repeat for several): cmake "
             "(<prefix>_cmake/), zephyr (<prefix>_zephyr/: a Zephyr module), arduino "
             "(<prefix>_library/ with library.properties and a self-check sketch), platformio "
             "(the same layout with library.json).")] = None,
) -> None:
    """Generate <prefix>_model.h/.c, <prefix>_weights.h and <prefix>_io.c from the int8 model."""
    from elman.firmware_codegen.api import codegen_run

    packages = [p.value for p in package or []]
    paths = codegen_run(run_dir, prefix=prefix, profile=profile, out_dir=out, example=example,
                        packages=packages)
    for path in paths:
        typer.echo(str(path))
    if example or packages:
        from elman.firmware_codegen.usage import how_to_build

        from elman.rundir import CODE_DIR

        target = out if out is not None else run_dir / CODE_DIR
        typer.echo("\n".join(how_to_build(target, prefix, paths, packages)))
