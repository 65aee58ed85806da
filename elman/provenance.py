"""Provenance: which stage wrote which file of a run directory, from which inputs.

The ledger ``RUN_DIR/provenance.json`` holds one record per stage: the SHA-256
of every file it read (``inputs``) and wrote (``outputs``), and the command that
makes them again (``rerun``). It is committed in the same atomic unit as the
stage's outputs (:mod:`elman.files`), so it always describes the files beside it.
Each stage's JSON report also carries its record (``"provenance"``: inputs and
its other outputs).

A stage starts with :func:`begin`, naming the files it will read. For each one,
the ledger must agree: the file is the one its producer wrote (else it *changed*:
edited by hand, copied over, damaged), and the producer's own inputs are still
the files it was made from (else it is *stale*). Either way the stage refuses
with one line that names the file and the command to rerun. So does a file a
commit removed as stale and no stage wrote since (``removed`` in the ledger: an
old ``model_int8.tflite`` put back after retraining). A file no record claims
(a hand-made run directory, or one made by elman 0.1) is taken as it is.

A stage ends with ``with run.outputs() as stage:`` (instead of
``elman.files.staged_outputs``). Its commit also removes, in the same unit,
everything a later stage made from files this one replaces (and that later
stage's record): e.g. ``elman train`` into a used run directory removes the old
``model_int8.tflite``, ``c/``, reports and page, and says so on stderr.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from elman import __version__, rundir
from elman.errors import ElmanError
from elman.files import Stage, dumps_json, staged_outputs

FORMAT = "elman-provenance/1"


class ProvenanceError(ElmanError):
    """An input changed since it was written, or was made from files that changed since."""


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_ledger(run_dir: Path | str) -> dict[str, Any] | None:
    """The run directory's ledger, or None when it has none."""
    path = Path(run_dir) / rundir.PROVENANCE
    if not path.is_file():
        return None
    try:
        ledger = json.loads(path.read_text(encoding="utf-8"))
        if ledger.get("format") != FORMAT or not isinstance(ledger.get("stages"), dict):
            raise ValueError(f"not an {FORMAT} ledger")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
        raise ProvenanceError(f"{path} is damaged ({exc}); rerun the stages of "
                              f"{Path(run_dir)} from `elman train`") from None
    return ledger


def producer_of(ledger: dict[str, Any] | None, rel: str) -> tuple[str, dict[str, Any]] | None:
    """The stage whose record lists ``rel`` among its outputs, and that record."""
    for stage, record in (ledger or {}).get("stages", {}).items():
        if rel in record.get("outputs", {}):
            return stage, record
    return None


class _Hashes:
    """SHA-256 of the run directory's files, each computed once."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self._known: dict[str, str | None] = {}

    def __call__(self, rel: str) -> str | None:
        if rel not in self._known:
            path = self.run_dir / rel
            self._known[rel] = sha256_file(path) if path.is_file() else None
        return self._known[rel]


def _expand(run_dir: Path, ledger: dict[str, Any] | None, name: str) -> list[str]:
    """``name``, or for the C directory the files in it (those the ledger lists, if any)."""
    path = run_dir / name
    if name != rundir.CODE_DIR or not path.is_dir():
        return [name]
    prefix = name.rstrip("/") + "/"
    listed = sorted(rel for _, record in (ledger or {}).get("stages", {}).items()
                    for rel in record.get("outputs", {}) if rel.startswith(prefix))
    if listed:
        return listed
    return sorted(p.relative_to(run_dir).as_posix() for p in path.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in
                                             p.relative_to(run_dir).parts))


def check_input(run_dir: Path, ledger: dict[str, Any] | None, rel: str,
                hashes: Callable[[str], str | None]) -> None:
    """Refuse ``rel`` when it changed since its producer wrote it, or is stale."""
    found = producer_of(ledger, rel)
    if found is None:
        remover = (ledger or {}).get("removed", {}).get(rel)
        if remover is None:
            return  # a file no stage wrote (a hand-made run directory): taken as it is
        raise ProvenanceError(
            f"{run_dir / rel} was put back by hand: `elman {remover}` removed it (made from "
            f"files it replaced) and no stage has written it since: rerun "
            f"`{rundir.PRODUCER.get(rel.split('/')[0], 'elman train')} {run_dir}`")
    stage, record = found
    path = run_dir / rel
    then, now = record["outputs"][rel], hashes(rel)
    rerun = rerun_command(record, stage, run_dir)
    if now != then:
        raise ProvenanceError(
            f"{path} changed since `elman {stage}` wrote it (SHA-256 {then[:12]}…, now "
            f"{(now or '')[:12]}…): rerun `{rerun}` (and the stages after it)")
    for source, sha in sorted(record.get("inputs", {}).items()):
        current = hashes(source)
        if current is not None and current != sha:
            if source != rel:
                check_input(run_dir, ledger, source, hashes)  # the cause first, when it changed
            raise ProvenanceError(
                f"{path} is stale: `elman {stage}` made it from another {source} than the one "
                f"now in {run_dir}: rerun `{rerun}`")


RUN_DIR = "{run_dir}"  # in a recorded command: the run directory, wherever it is now


def _rerun_hint(stage: str, run_dir: Path, default: Sequence[str] | None) -> str:
    """The command that makes the stage's outputs again, with the run directory as RUN_DIR."""
    if rundir.argv and rundir.argv[0] == stage:
        args = [RUN_DIR if a and Path(a) == run_dir else a for a in rundir.argv]
    else:
        args = [*(default or [stage]), RUN_DIR]
    return shlex.join(["elman", *args]).replace(shlex.quote(RUN_DIR), RUN_DIR)


def rerun_command(record: dict[str, Any], stage: str, run_dir: Path) -> str:
    """A record's command for the run directory ``run_dir`` (which may have moved)."""
    return str(record.get("rerun") or f"elman {stage} {RUN_DIR}").replace(
        RUN_DIR, shlex.quote(str(run_dir)))


def begin(run_dir: Path | str, stage: str, reads: Sequence[str] = (),
          optional: Sequence[str] = (), *, rerun: Sequence[str] | None = None) -> StageRun:
    """Check the files ``stage`` reads (``reads`` must exist) and return its :class:`StageRun`.

    ``rerun``: the command's arguments without the run directory, when not
    ``elman STAGE RUN_DIR`` (train: ``["train", "--data", data]``).
    Raises :class:`ProvenanceError` for a changed or stale input, and
    :class:`~elman.errors.ElmanError` for a missing one or a run directory in use
    by another process.
    """
    from elman.run_lock import RunDirectoryBusy, holder_of

    run_dir = Path(run_dir)
    holder = holder_of(run_dir) if run_dir.is_dir() else None
    if holder is not None:
        raise RunDirectoryBusy(f"run directory {run_dir} is in use by {holder.describe()}")
    ledger = load_ledger(run_dir) if run_dir.is_dir() else None
    hashes = _Hashes(run_dir)
    inputs: dict[str, str] = {}
    for name, required in [(n, True) for n in reads] + [(n, False) for n in optional]:
        if required:
            rundir.require(run_dir, name)
        elif not (run_dir / name).exists():
            continue
        for rel in _expand(run_dir, ledger, name):
            if hashes(rel) is None:
                if required:
                    rundir.require(run_dir, rel)
                continue
            check_input(run_dir, ledger, rel, hashes)
            inputs[rel] = hashes(rel)  # type: ignore[assignment]
    return StageRun(run_dir, stage, inputs, _rerun_hint(stage, run_dir, rerun))


class StageRun:
    """One stage's run on a run directory: what it read, and how it commits."""

    def __init__(self, run_dir: Path, stage: str, inputs: dict[str, str], rerun: str):
        self.run_dir = run_dir
        self.stage = stage
        self.inputs = inputs
        self.rerun = rerun
        self.removed: list[str] = []
        self.removed_names = ""

    @contextmanager
    def outputs(self, target: Path | str | None = None) -> Iterator[Stage]:
        """Stage the outputs (into ``target``, default the run directory) and commit them
        with this stage's record; a ``target`` outside the run directory gets no record."""
        target = self.run_dir if target is None else Path(target)
        try:
            subdir = target.resolve().relative_to(self.run_dir.resolve()).as_posix()
        except (ValueError, OSError):
            with staged_outputs(target) as stage:
                yield stage
            return
        subdir = "" if subdir == "." else subdir
        with staged_outputs(self.run_dir, subdir, before_commit=self._record,
                            annotate_json=self._annotate) as stage:
            yield stage
        if self.removed:
            print(f"{self.stage}: removed the older {self.removed_names} from {self.run_dir} "
                  f"(made from files this {self.stage} replaced)", file=sys.stderr, flush=True)

    def _annotate(self, name: str, obj: Any) -> None:
        """The stage's own report records what the stage read (in the caller's dict too)."""
        if name == rundir.REPORTS.get(self.stage) and isinstance(obj, dict):
            obj["provenance"] = {"stage": self.stage, "inputs": dict(sorted(self.inputs.items())),
                                 "ledger": rundir.PROVENANCE}

    def _record(self, stage: Stage) -> None:
        """Before the commit: the ledger, and the stale outputs of later stages to remove."""
        new = stage.staging / "new"
        outputs = {rel: sha256_file(new / rel) for rel in stage.staged()}
        try:
            ledger = load_ledger(self.run_dir) or {"format": FORMAT, "stages": {}}
        except ProvenanceError:
            if self.stage != "train":
                raise
            ledger = {"format": FORMAT, "stages": {}}  # training starts the directory anew
        stages: dict[str, Any] = ledger["stages"]
        previous = stages.get(self.stage)
        if self.stage == "codegen" and previous and previous.get("inputs") == self.inputs:
            outputs = {**previous["outputs"], **outputs}  # another prefix, same model
        for record in stages.values():  # these files now belong to this stage
            for rel in outputs:
                record.get("outputs", {}).pop(rel, None)
        stages[self.stage] = {"rerun": self.rerun, "elman_version": __version__,
                              "inputs": dict(sorted(self.inputs.items())),
                              "outputs": dict(sorted(outputs.items()))}
        removed = self._stale_later_outputs(stages, outputs)
        for rel in removed:
            stage.remove(rel)
        tombstones = {rel: who for rel, who in ledger.get("removed", {}).items()
                      if rel not in outputs}
        tombstones.update({rel: self.stage for rel in removed})
        ledger["removed"] = dict(sorted(tombstones.items()))
        self.removed = removed
        self.removed_names = _names(self.run_dir, removed)
        ledger["note"] = ("which elman stage wrote each file of this run directory (SHA-256), "
                          "from which inputs; every stage checks its inputs against it")
        stage.root_path(rundir.PROVENANCE).write_text(dumps_json(ledger), encoding="utf-8")

    def _stale_later_outputs(self, stages: dict[str, Any], written: dict[str, str]) -> list[str]:
        """Outputs of later stages made from files other than those about to be in place."""
        current = _Hashes(self.run_dir)
        after: dict[str, str | None] = dict(written)
        stale: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, record in stages.items():
                if name == self.stage or name in stale:
                    continue
                for rel, sha in record.get("inputs", {}).items():
                    now = after[rel] if rel in after else current(rel)
                    if now != sha:
                        stale.add(name)
                        after.update({out: None for out in record.get("outputs", {})})
                        changed = True
                        break
        removed = sorted({rel for name in stale for rel in stages[name].get("outputs", {})
                          if (self.run_dir / rel).exists()})
        for name in stale:
            del stages[name]
        claimed = {rel for record in stages.values() for rel in record.get("outputs", {})}
        claimed |= set(removed)
        for later in rundir.DOWNSTREAM[self.stage]:  # files no record claims: by their names
            for name in rundir.OUTPUTS[later]:
                path = self.run_dir / name
                if path.exists() and name not in claimed and not any(
                        c.startswith(name + "/") for c in claimed) and name not in written:
                    removed.append(name)
        return sorted(set(removed))


def _names(run_dir: Path, rels: list[str]) -> str:
    """``c/ (4 files), model_int8.tflite, report.html``."""
    groups: dict[str, int] = {}
    for rel in rels:
        top, sep, _ = rel.partition("/")
        key = top + "/" if sep or (run_dir / rel).is_dir() else rel
        count = sum(p.is_file() for p in (run_dir / rel).rglob("*")) if not sep and \
            (run_dir / rel).is_dir() else 1
        groups[key] = groups.get(key, 0) + count
    return ", ".join(f"{k} ({n} files)" if k.endswith("/") and n > 1 else k
                     for k, n in groups.items())


def check_run(run_dir: Path | str, names: Sequence[str]) -> dict[str, str]:
    """Check ``names`` (present ones) as a stage reading them would; their SHA-256."""
    return begin(run_dir, "check", optional=names).inputs
