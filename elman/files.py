"""Atomic outputs: a stage's files appear all together, or not at all.

``with staged_outputs(run_dir) as stage:`` gives paths in a hidden temporary
directory inside ``run_dir``; when the block finishes without an exception the
files (and directories) are moved into ``run_dir``, replacing older ones; when
it raises, the temporary directory is removed and ``run_dir`` is untouched
(a run directory that did not exist before is removed again if still empty).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Stage:
    """Where a stage writes its outputs before they are committed."""

    def __init__(self, tmp: Path, final: Path):
        self.tmp = tmp
        self.final = final

    def path(self, name: str) -> Path:
        """Temporary path for output ``name`` (relative to the run directory)."""
        p = self.tmp / name
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
        return self.write_text(name, dumps_json(obj))


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
def staged_outputs(run_dir: Path | str) -> Iterator[Stage]:
    final = Path(run_dir)
    created = not final.exists()
    final.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".staging-", dir=final))
    try:
        stage = Stage(tmp, final)
        yield stage
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                final.rmdir()
        raise
    for entry in sorted(tmp.iterdir()):
        dest = final / entry.name
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        os.replace(entry, dest)
    tmp.rmdir()
