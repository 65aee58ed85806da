"""One run at a time per run directory.

``with locked(run_dir, "elman quantize runs/bm"):`` holds an exclusive
``flock`` on ``run_dir/.elman.lock`` for the whole stage. The file says who holds
it (pid, host, command, since when, UTC); a second run into the directory is
refused with that line (:class:`RunDirectoryBusy`, exit 1). The kernel releases
the lock when its process dies, so a lock left by a killed run is taken over by
the next one, with a note naming the dead holder. Taking the lock is also the
up-front check that the directory is writable (a read-only directory or file
system is one ``error:`` line before any work) and has room
(:func:`check_room`); it finishes or removes what interrupted stages left
(:func:`elman.files.recover`). Re-entrant within a process (``elman run`` holds
it across its stages). Released on exit: the file is removed, and so is a run
directory this lock created if nothing else was written into it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from elman.errors import ElmanError
from elman.files import deferred_interrupts, process_alive, recover

LOCK_FILE = ".elman.lock"
MB = 1024 * 1024


class RunDirectoryBusy(ElmanError):
    """Another process is working in this run directory."""


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    command: str
    since: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} (`{self.command}`, since {self.since})"

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        try:
            d = json.loads(text)
            return cls(int(d["pid"]), str(d["host"]), str(d["command"]), str(d["since"]))
        except (ValueError, TypeError, KeyError):
            return None


_held: dict[Path, int] = {}  # resolved run directory -> nesting depth in this process


def _notify_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def writable_error(path: Path, exc: OSError) -> ElmanError:
    reason = exc.strerror or str(exc)
    return ElmanError(f"cannot write to {path}: {reason.lower()}"
                      + (" (choose another directory, or make this one writable)"
                         if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else ""))


def check_room(path: Path, need_mb: float, what: str) -> None:
    """Refuse now, rather than after minutes of work, when ``path``'s disk is nearly full."""
    free = shutil.disk_usage(path).free
    if free < need_mb * MB:
        raise ElmanError(f"only {free / MB:.1f} MB free on the file system of {path}; "
                         f"{what} needs about {need_mb:g} MB: free some space or choose "
                         "another run directory")


@contextmanager
def locked(run_dir: Path | str, command: str, *, create: bool = False, need_mb: float = 0,
           notify: Callable[[str], None] = _notify_stderr) -> Iterator[None]:
    """Hold the run directory's lock for the block (see the module docstring).

    ``create``: make the directory when missing (train, run); otherwise a missing
    directory is left for the stage to report. ``need_mb``: free space required.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ElmanError(f"run directory {run_dir} exists and is not a directory")
    created = False
    if not run_dir.exists():
        if not create:
            yield
            return
        try:
            run_dir.mkdir(parents=True)
        except OSError as exc:
            raise writable_error(run_dir, exc) from None
        created = True
    key = run_dir.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    try:
        with deferred_interrupts():  # the lock file is made and owned as one step
            fd = _acquire(run_dir, command, notify)
            _held[key] = 1
    except BaseException:
        if key in _held:  # taken, then interrupted as the step ended
            del _held[key]
            _release(run_dir, fd)
        if created:
            with contextlib.suppress(OSError):
                run_dir.rmdir()
        raise
    try:
        for line in recover(run_dir):
            notify(f"note: {line}")
        if need_mb:
            check_room(run_dir, need_mb, command)
        yield
    finally:
        with deferred_interrupts():
            del _held[key]
            _release(run_dir, fd)
            if created:
                with contextlib.suppress(OSError):
                    run_dir.rmdir()  # only when nothing was written into it


def _acquire(run_dir: Path, command: str, notify: Callable[[str], None]) -> int | None:
    path = run_dir / LOCK_FILE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise writable_error(run_dir, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = Holder.parse(_read(fd))
            os.close(fd)
            who = holder.describe() if holder else "another process"
            raise RunDirectoryBusy(f"run directory {run_dir} is in use by {who}; wait for it "
                                   "to finish or stop it, or choose another run directory"
                                   ) from None
        except OSError as exc:  # a file system without locks: run unlocked, say so
            os.close(fd)
            notify(f"warning: cannot lock {path} ({exc.strerror}); "
                   "make sure no other elman run uses this directory")
            return None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file while we waited: lock the new one
    previous = Holder.parse(_read(fd))
    if previous is not None:
        notify(f"note: {run_dir} was locked by {previous.describe()}, which is no longer "
               "running; taking the lock over")
    me = Holder(os.getpid(), socket.gethostname(), command,
                time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(me)).encode(), 0)
    except OSError as exc:
        os.close(fd)
        raise writable_error(run_dir, exc) from None
    return fd


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode("utf-8", "replace")
    except OSError:
        return ""


def _release(run_dir: Path, fd: int | None) -> None:
    if fd is None:
        return
    with contextlib.suppress(OSError):
        (run_dir / LOCK_FILE).unlink()
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)


def holder_of(run_dir: Path | str) -> Holder | None:
    """The live process of this host, other than this one, that holds ``run_dir``'s lock.

    Reads the lock file without locking (a check for callers of the Python API,
    who do not take the lock themselves).
    """
    if Path(run_dir).resolve() in _held:
        return None
    try:
        holder = Holder.parse((Path(run_dir) / LOCK_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    if holder is None or holder.host != socket.gethostname() or holder.pid == os.getpid() \
            or not process_alive(holder.pid):
        return None
    return holder
