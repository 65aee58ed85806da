"""Atomic outputs: a stage's files appear all together, or not at all.

``with staged_outputs(run_dir) as stage:`` gives paths in a hidden staging
directory ``run_dir/.staging-<pid>-<random>/new/``. When the block ends without
an exception, the files are committed as one unit:

1. the journal ``commit.json`` lists every file to put in place (and every path
   to remove) — written only once every staged file is complete;
2. each file it displaces is moved into the staging directory's ``old/``, each
   new file is renamed into place (renames within one file system);
3. the staging directory is removed.

A Ctrl-C during step 2 is held until the step ends. An error during step 2 (a
rename refused) puts every displaced file back: the run directory is as before.
A crash during step 2 (power, ``kill -9``) leaves the journal: the next
:func:`recover` of that directory (every ``staged_outputs`` and every run-directory
lock calls it) finishes the commit, since every new file was complete before the
journal existed. A staging directory without a journal whose process is gone is
an interrupted stage: it is removed. When the block raises, its staging directory
is removed, the run directory is untouched, and a run directory that did not
exist before is removed again if still empty.

``subdir`` stages files of a subdirectory (``c/``) in the same unit as files
at the top (the run directory's ledger).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from elman.errors import ElmanError

STAGING_PREFIX = ".staging-"
JOURNAL = "commit.json"
ROLLBACK = "rollback.json"
JOURNAL_FORMAT = "elman-commit/1"


class Stage:
    """Where a stage writes its outputs before they are committed.

    ``final`` is the directory the names are relative to (``root / subdir``);
    ``root`` is the directory the commit is atomic in.
    """

    def __init__(self, tmp: Path, root: Path, subdir: str = ""):
        self.staging = tmp
        self.root = root
        self.subdir = subdir
        self.final = root / subdir if subdir else root
        self.tmp = tmp / "new" / subdir if subdir else tmp / "new"
        self.removals: list[str] = []
        # called on every object given to write_json before it is written (provenance)
        self.annotate_json: Callable[[str, Any], None] | None = None

    def path(self, name: str) -> Path:
        """Temporary path for output ``name`` (relative to ``final``)."""
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def root_path(self, name: str) -> Path:
        """Temporary path for ``name`` relative to ``root`` (outside ``subdir``)."""
        p = self.staging / "new" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_text(self, name: str, text: str) -> Path:
        p = self.path(name)
        p.write_text(text, encoding="utf-8")
        return p

    def write_bytes(self, name: str, data: bytes) -> Path:
        p = self.path(name)
        p.write_bytes(data)
        return p

    def write_json(self, name: str, obj: Any) -> Path:
        if self.annotate_json is not None:
            self.annotate_json(name, obj)
        return self.write_text(name, dumps_json(obj))

    def remove(self, rel: str) -> None:
        """Remove ``root/rel`` (a file or a directory) in the same commit."""
        if rel not in self.removals:
            self.removals.append(rel)

    def staged(self) -> list[str]:
        """Every staged file, as a POSIX path relative to ``root``, sorted."""
        new = self.staging / "new"
        return sorted(p.relative_to(new).as_posix() for p in new.rglob("*")
                      if p.is_file() or p.is_symlink())


def dumps_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, 2-space indent, trailing newline)."""
    return json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


@contextmanager
def staged_outputs(run_dir: Path | str, subdir: str = "",
                   before_commit: Callable[[Stage], None] | None = None,
                   annotate_json: Callable[[str, Any], None] | None = None) -> Iterator[Stage]:
    """Stage files under ``run_dir`` (or ``run_dir/subdir``) and commit them as one unit.

    ``before_commit(stage)`` runs after the block, before the journal: it may
    stage more files or removals (the provenance ledger does).
    """
    root = Path(run_dir)
    if root.exists() and not root.is_dir():
        raise ElmanError(f"output path {root} exists and is not a directory")
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    recover(root)
    tmp = root / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    stage = Stage(tmp, root, subdir)
    stage.annotate_json = annotate_json
    try:
        (tmp / "new").mkdir(parents=True)
        yield stage
        if before_commit is not None:
            before_commit(stage)
        commit(stage)
    except BaseException as exc:
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(root)  # a failed write names where it went
        with deferred_interrupts():
            shutil.rmtree(tmp, ignore_errors=True)
            if created:
                with contextlib.suppress(OSError):
                    root.rmdir()
        raise


def commit(stage: Stage) -> None:
    """Put the staged files in place and remove ``stage.removals``, as one unit."""
    tmp, root = stage.staging, stage.root
    replace, remove = stage.staged(), [r for r in stage.removals if r not in stage.staged()]
    _write_journal(tmp / JOURNAL, replace, remove)
    with deferred_interrupts():
        try:
            for rel in remove:
                _displace(root, tmp, rel)
            for rel in replace:
                _displace(root, tmp, rel)
                dest = root / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp / "new" / rel, dest)
        except BaseException:
            os.replace(tmp / JOURNAL, tmp / ROLLBACK)
            _roll_back(root, tmp, replace, remove)
            raise
        (tmp / JOURNAL).unlink()
        _prune_empty_parents(root, remove)
        shutil.rmtree(tmp, ignore_errors=True)


def _write_journal(path: Path, replace: list[str], remove: list[str]) -> None:
    part = path.with_suffix(".part")
    with open(part, "w", encoding="utf-8") as f:
        f.write(dumps_json({"format": JOURNAL_FORMAT, "replace": replace, "remove": remove}))
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)


def _displace(root: Path, tmp: Path, rel: str) -> None:
    """Move ``root/rel`` (if any) to ``tmp/old/rel``, once."""
    dest, backup = root / rel, tmp / "old" / rel
    if (dest.exists() or dest.is_symlink()) and not (backup.exists() or backup.is_symlink()):
        backup.parent.mkdir(parents=True, exist_ok=True)
        os.replace(dest, backup)


def _roll_back(root: Path, tmp: Path, replace: list[str], remove: list[str]) -> None:
    """Undo a partial commit: new files back to ``new/``, displaced ones back in place."""
    for rel in reversed(replace):
        dest, new = root / rel, tmp / "new" / rel
        if not (new.exists() or new.is_symlink()) and (dest.exists() or dest.is_symlink()):
            new.parent.mkdir(parents=True, exist_ok=True)
            os.replace(dest, new)
    for rel in [*reversed(replace), *reversed(remove)]:
        backup = tmp / "old" / rel
        if backup.exists() or backup.is_symlink():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(backup, root / rel)
    shutil.rmtree(tmp, ignore_errors=True)


def _roll_forward(root: Path, tmp: Path, replace: list[str], remove: list[str]) -> None:
    for rel in remove:
        _displace(root, tmp, rel)
    for rel in replace:
        new = tmp / "new" / rel
        if new.exists() or new.is_symlink():
            _displace(root, tmp, rel)
            dest = root / rel
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(new, dest)
    _prune_empty_parents(root, remove)
    shutil.rmtree(tmp, ignore_errors=True)


def _prune_empty_parents(root: Path, removed: list[str]) -> None:
    for rel in removed:
        parent = (root / rel).parent
        while parent != root and root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent


def _owner_pid(name: str) -> int | None:
    """The pid in ``.staging-<pid>-<random>``; None for other names."""
    pid, sep, _ = name[len(STAGING_PREFIX):].partition("-")
    return int(pid) if sep and pid.isdigit() else None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(root: Path | str) -> list[str]:
    """Finish or remove what interrupted stages left in ``root`` (and its subdirectories).

    A staging directory with a journal is committed (its files were complete); one
    without is removed; staging directories of running processes (other than this
    one) are left alone. Returns one line per directory handled.
    """
    root = Path(root)
    done: list[str] = []
    if not root.is_dir():
        return done
    candidates = list(root.glob(f"{STAGING_PREFIX}*"))
    candidates += [p for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
                   for p in d.glob(f"{STAGING_PREFIX}*")]
    for tmp in sorted(candidates):
        pid = _owner_pid(tmp.name)
        if pid == os.getpid() or (pid is not None and process_alive(pid)):
            continue  # a stage in progress (this process's, or a running one's)
        with deferred_interrupts():
            for journal, finish in ((tmp / JOURNAL, _roll_forward), (tmp / ROLLBACK, _roll_back)):
                if journal.is_file():
                    entries = json.loads(journal.read_text(encoding="utf-8"))
                    finish(tmp.parent, tmp, entries["replace"], entries["remove"])
                    verb = "finished" if finish is _roll_forward else "undid"
                    done.append(f"{verb} the interrupted commit of "
                                f"{len(entries['replace'])} file(s) in {tmp.parent}")
                    break
            else:
                shutil.rmtree(tmp, ignore_errors=True)
                done.append(f"removed {tmp}, left by an interrupted stage")
    return done


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) until the block ends, then deliver it.

    Only possible in the main thread (elsewhere the block runs unprotected).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[Any] = []
    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, lambda signum, frame: received.append(frame))
    except ValueError:  # not in the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        if callable(previous):
            previous(signal.SIGINT, received[0])
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt
