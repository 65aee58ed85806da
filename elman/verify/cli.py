"""`elman verify RUN_DIR`: prove every implementation bit-exact against the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from elman.errors import ElmanError, VerificationError

PROFILE_CHOICES = {"tflm": ("tflm",), "tflite": ("tflite",), "both": ("tflm", "tflite")}


def verify(
    run_dir: Annotated[Path, typer.Argument(help="Run directory with model_int8.tflite.")],
    profile: Annotated[str, typer.Option(
        help="Arithmetic profile to prove: tflm (TFLite Micro), tflite (LiteRT reference "
             "kernels) or both.")] = "both",
    limit: Annotated[int | None, typer.Option(
        help="Use at most this many test sequences (text: steps of the validation "
             "stream).")] = None,
    float_model: Annotated[bool, typer.Option(
        "--float/--no-float", help="Also compare with the float Keras model (metrics).")] = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    engine: Annotated[str, typer.Option(
        help="Simulator engine: numba (compiled; the numpy engine is then one more pair), "
             "numpy (the reference) or auto (numba where it imports, unless "
             "ELMAN_SIMULATOR_ENGINE says otherwise).")] = "auto",
) -> None:
    """Compare the simulator with LiteRT, TFLite Micro (and more) on the held-out data."""
    from elman.runtime.float_expectation import hidden_error_message
    from elman.verify.report import (
        format_table,
        mismatch_message,
        state_error_failed,
        verify_run,
    )

    if profile not in PROFILE_CHOICES:
        raise ElmanError(f"--profile must be one of {', '.join(PROFILE_CHOICES)}, "
                         f"got {profile!r}")
    report = verify_run(run_dir, profiles=PROFILE_CHOICES[profile], limit=limit,
                        progress=progress, float_model=float_model, raise_on_mismatch=False,
                        engine=engine)
    typer.echo(format_table(report))
    if not report["ok"]:
        raise VerificationError(mismatch_message(report))
    if state_error_failed(report):
        raise VerificationError(hidden_error_message(report["state_error"]))
