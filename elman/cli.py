"""The ``elman`` command: every stage's commands, composed in one place.

Each stage module defines plain functions with ``Annotated`` Typer options that
are thin wrappers over that stage's pure functions; this module only registers
them. An :class:`~elman.errors.ElmanError` becomes ``error: <message>`` on
stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from typing import Any

import typer

from elman import __version__
from elman.errors import ElmanError


def reject_non_finite(options: dict[str, Any]) -> None:
    """Every float option is a finite number: ``--lr nan`` or ``--clip inf`` is an error."""
    for name, value in options.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ElmanError(f"--{name.replace('_', '-')} must be a finite number, got {value}")


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn ElmanError into one clear line on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            reject_non_finite(kwargs)
            return fn(*args, **kwargs)
        except ElmanError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"elman {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="elman",
    help="Train Elman RNNs, quantize them to int8, generate bit-exact C for microcontrollers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """elman: data -> model.keras -> model_int8.tflite -> C, each step proven on real data."""


def _register() -> None:
    from elman import pipeline
    from elman.firmware_codegen import cli as codegen_cli
    from elman.firmware_codegen.arm import cli as mcu_cli
    from elman.quantize import cli as quantize_cli
    from elman.runtime import cli as runtime_cli
    from elman.train import cli as train_cli

    commands: list[tuple[str, Callable[..., Any]]] = [
        ("train", train_cli.train),
        ("quantize", quantize_cli.quantize),
        ("inspect", quantize_cli.inspect),
        ("codegen", codegen_cli.codegen),
        ("verify", runtime_cli.verify),
        ("mcu", mcu_cli.mcu),
        ("run", pipeline.run),
    ]
    for name, fn in commands:
        app.command(name)(user_errors(fn))


_register()


def main() -> None:
    app(prog_name="elman")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
