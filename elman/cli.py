"""The ``elman`` console script: the commands (:mod:`elman.commands`), run so that
no traceback reaches the user and no run leaves temporaries behind.

This module imports only the standard library at the top, so :func:`main` takes
over Ctrl-C before anything heavy is imported. Then:

- Ctrl-C at any moment (importing TensorFlow, training, writing files) ends the
  command with exit status 130 and no traceback; the stage being written is
  rolled back by :mod:`elman.files`, the run directory's lock is released;
- every temporary file of the command and its children (gcc, the converter, the
  emulator builds) goes into one private directory ``$TMPDIR/elman-<pid>-*``,
  removed when the command ends; those of commands that were killed are removed
  by the next command.

``elman.cli.app`` is the Typer application (imported on first use).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

INTERRUPT_EXIT = 130
TMP_PREFIX = "elman-"

_interrupted = False


def on_interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
    """SIGINT: remembered, then KeyboardInterrupt (the search workers install it too).
    Raised inside a TensorFlow or Keras scope, the scope's exit can replace it with its
    own error ("Exiting variable_creator_scope without proper nesting"); the flag,
    :func:`interrupted`, still says it was a stop."""
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def interrupted() -> bool:
    """Whether this process has received SIGINT since :func:`on_interrupt` was installed."""
    return _interrupted


def __getattr__(name: str):
    if name in ("app", "stage_command"):
        from elman import commands

        return getattr(commands, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _is_private_tmp(path) -> int | None:
    """The pid of ``elman-<pid>-<random>``, or None for any other name."""
    pid, sep, _ = path.name[len(TMP_PREFIX):].partition("-")
    return int(pid) if path.name.startswith(TMP_PREFIX) and sep and pid.isdigit() else None


def remove_dead_temporaries(root) -> list:
    """Remove the private temporary directories of elman commands that no longer run."""
    import shutil

    removed = []
    for path in root.glob(f"{TMP_PREFIX}*-*"):
        pid = _is_private_tmp(path)
        if pid is None or pid == os.getpid() or not path.is_dir():
            continue
        try:
            if path.stat().st_uid != os.getuid():
                continue
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        except OSError:
            continue
    return removed


def _private_tmp(created: list):
    """Make this command's private temporary directory (appended to ``created``)."""
    import tempfile
    from pathlib import Path

    from elman.files import deferred_interrupts

    root = Path(tempfile.gettempdir())
    with contextlib.suppress(OSError):
        remove_dead_temporaries(root)
    with deferred_interrupts():  # made and remembered as one step
        try:
            created.append(Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-",
                                                 dir=root)))
        except OSError:
            return  # a full or read-only $TMPDIR: the stage reports what fails
    os.environ["TMPDIR"] = str(created[0])
    tempfile.tempdir = str(created[0])


def _run(args: list[str]) -> int:
    from elman import rundir

    rundir.argv = list(args)
    from elman import commands

    return commands.app_main(args)


def _main() -> int:
    created: list = []
    try:
        signal.signal(signal.SIGINT, on_interrupt)  # first, and inside the try
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
        _private_tmp(created)
        return _run(sys.argv[1:])
    except KeyboardInterrupt:
        return INTERRUPT_EXIT
    except BrokenPipeError:  # `elman ... | head`: stop writing, quietly
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except Exception:
        # A C extension being imported turns the KeyboardInterrupt into its own error
        # (TensorFlow's pybind11 modules: "ImportError: initialization failed"): after a
        # SIGINT, any error is the stop.
        if _interrupted:
            return INTERRUPT_EXIT
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the cleanup is not interrupted
        if created:
            import shutil

            shutil.rmtree(created[0], ignore_errors=True)


def main() -> None:
    """Entry point of the ``elman`` console script."""
    try:
        code = _main()
    except KeyboardInterrupt:  # in the instant before the handler or the cleanup began
        code = INTERRUPT_EXIT
    if _interrupted:
        code = INTERRUPT_EXIT
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more to say
            stream.flush()
    if code == INTERRUPT_EXIT:
        os._exit(code)  # skip the exit handlers of half-imported libraries
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
