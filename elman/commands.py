"""The ``elman`` commands: every stage's command, composed in one place.

Each stage module defines plain functions with ``Annotated`` Typer options that
are thin wrappers over that stage's pure functions; this module registers them,
each wrapped by :func:`stage_command`:

- every float option must be finite (``--lr nan`` is an error);
- a command that writes into a run directory holds its lock
  (:mod:`elman.run_lock`), which also checks up front that the directory is
  writable and has room;
- an :class:`~elman.errors.ElmanError` becomes ``error: <message>`` on stderr,
  exit status 1; so does an ``OSError`` (a full disk, a read-only directory),
  named by the path it concerns;
- a usage error (unknown option, bad value, missing argument) is one line
  ``error: ... (see `elman CMD --help`)``, exit status 2.
"""

from __future__ import annotations

import errno
import functools
import math
import shlex
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from elman import __version__
from elman.errors import ElmanError

USAGE_EXIT = 2
INTERRUPT_EXIT = 130

# free space each command needs in its run directory, MB (checked before any work)
NEEDS_MB = {"train": 20, "quantize": 5, "codegen": 5, "verify": 1, "mcu": 1, "report": 5,
            "run": 30}

def command_line(name: str, run_dir: Path | None) -> str:
    """The command as the user typed it (or its stage name and run directory)."""
    from elman import rundir

    if rundir.argv is not None:
        return shlex.join(["elman", *rundir.argv])
    return " ".join(["elman", name] + ([str(run_dir)] if run_dir is not None else []))


def os_error_message(exc: OSError) -> str:
    """One line for an OSError: what, where, and what to do about it."""
    where = exc.filename
    if where is not None:
        parts = Path(str(where)).parts
        staged = next((i for i, p in enumerate(parts) if p.startswith(".staging-")), None)
        if staged is not None:  # name the run directory, not elman's staging area
            where = Path(*parts[:staged])
    what = (exc.strerror or str(exc)).lower()
    line = f"{what}: {where}" if where is not None else what
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        line += " (free some space or choose another run directory; nothing was written)"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        line += " (choose another directory, or make this one writable)"
    return line


def reject_non_finite(options: dict[str, Any]) -> None:
    """Every float option is a finite number: ``--lr nan`` or ``--clip inf`` is an error."""
    for name, value in options.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ElmanError(f"--{name.replace('_', '-')} must be a finite number, got {value}")


def stage_command(name: str, fn: Callable[..., Any], *, writes: bool = True,
                  creates: Callable[[dict[str, Any]], bool] = lambda kwargs: False
                  ) -> Callable[..., Any]:
    """Wrap a command: the run directory's lock, and user errors as one line, exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        from elman.run_lock import locked

        try:
            reject_non_finite(kwargs)
            with ExitStack() as stack:
                run_dir = kwargs.get("run_dir")
                if writes and run_dir is not None:
                    stack.enter_context(locked(
                        run_dir, command_line(name, run_dir), create=creates(kwargs),
                        need_mb=NEEDS_MB.get(name, 1)))
                fn(*args, **kwargs)
        except ElmanError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise
            typer.echo(f"error: {os_error_message(exc)}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def _usage_line(exc: Any, group: Any, args: Sequence[str]) -> str:
    """``no such option: --x (see `elman train --help`)``."""
    message = exc.format_message()
    if message[:1].isupper() and message[1:2].islower():
        message = message[0].lower() + message[1:]
    command = next((a for a in args if not a.startswith("-")), None)
    path = f"elman {command}" if command in group.commands else "elman"
    return f"{message.rstrip('.')} (see `{path} --help`)"


class ElmanGroup(TyperGroup):
    """Typer's group, with usage errors as one ``error:`` line (exit 2)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        from typer._click import exceptions as click_exceptions

        args = list(sys.argv[1:] if args is None else args)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False,
                                  **extra)
            code = result if isinstance(result, int) else 0
        except click_exceptions.NoArgsIsHelpError as exc:
            exc.show()
            code = USAGE_EXIT
        except click_exceptions.UsageError as exc:
            typer.echo(f"error: {_usage_line(exc, self, args)}", err=True)
            code = USAGE_EXIT
        except click_exceptions.ClickException as exc:
            typer.echo(f"error: {exc.format_message()}", err=True)
            code = exc.exit_code
        except typer.Abort:
            code = INTERRUPT_EXIT
        if standalone_mode:
            sys.exit(code)
        return code


def _version(value: bool) -> None:
    if value:
        typer.echo(f"elman {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="elman",
    cls=ElmanGroup,
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
    from elman import pipeline, report_cli
    from elman.firmware_codegen import cli as codegen_cli
    from elman.firmware_codegen.arm import cli as mcu_cli
    from elman.quantize import cli as quantize_cli
    from elman.search import cli as search_cli
    from elman.train import cli as train_cli
    from elman.verify import cli as verify_cli

    always: Callable[[dict[str, Any]], bool] = lambda kwargs: True  # noqa: E731
    app.command("train")(stage_command("train", train_cli.train, creates=always))
    app.command("import")(stage_command("import", quantize_cli.import_model, creates=always))
    app.command("quantize")(stage_command("quantize", quantize_cli.quantize))
    app.command("inspect")(stage_command("inspect", quantize_cli.inspect, writes=False))
    app.command("codegen")(stage_command("codegen", codegen_cli.codegen))
    app.command("verify")(stage_command("verify", verify_cli.verify))
    app.command("mcu")(stage_command("mcu", mcu_cli.mcu))
    app.command("report")(stage_command("report", report_cli.report))
    app.command("run")(stage_command(
        "run", pipeline.run, creates=lambda kwargs: kwargs.get("start", "train") == "train"))
    # the search locks SEARCH_DIR itself, after it has checked that anything can fit
    app.command("search")(stage_command("search", search_cli.search, writes=False))


_register()


def app_main(args: Sequence[str]) -> int:
    """Run the command line ``args``; returns the exit status."""
    return typer.main.get_command(app).main(list(args), prog_name="elman",
                                            standalone_mode=False)
