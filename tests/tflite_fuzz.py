"""A seeded corpus of damaged elman ``.tflite`` files, and a trial of the stages on them.

Used by ``tests/test_fuzz_tflite.py`` (a few dozen files in ``make test``, more
under ``make test-all``) and ``bench/fuzz_tflite.py`` (hundreds, with the table
of the issue's trial). Every variant goes through ``elman inspect``,
``elman codegen`` and ``elman verify`` (the real CLI, in process); a variant is

- *refused cleanly* when every stage exits 1 with one ``error:`` line;
- *accepted, same model* when a stage succeeded and the IR it read equals the
  original's (a flip in bytes no reader uses: padding, an unused buffer);
- *silently accepted* when a stage succeeded on an IR that differs — the failure
  the integrity checksum exists to prevent;
- a *traceback* when any stage raised anything but a one-line error.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from elman.quantize.flatbuffer_verify import decode_tflite
from elman.quantize.integrity import CHECKSUM_NAME, digest_of
from elman.quantize.metadata import add_metadata
from elman.quantize.reader import read_ir
from typer.testing import CliRunner

from elman import rundir
from elman.cli import app
from elman.errors import ElmanError

OUTCOMES = ("refused cleanly", "accepted, same model", "silently accepted", "traceback")


@dataclass(frozen=True)
class Variant:
    kind: str  # "bit flip", "zeroed bytes", "random bytes", "truncated", "graph edit", ...
    label: str
    data: bytes


def byte_variants(model: bytes, count: int, seed: int = 0) -> list[Variant]:
    """``count`` distinct damaged copies: bit flips (half), zeroed runs, random bytes and
    truncations, at positions drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    out: list[Variant] = []
    seen = {model}
    while len(out) < count:
        kind = ("bit flip", "bit flip", "bit flip", "bit flip", "zeroed bytes", "zeroed bytes",
                "random bytes", "truncated")[len(out) % 8]
        data = bytearray(model)
        pos = int(rng.integers(0, len(model)))
        if kind == "bit flip":
            bit = int(rng.integers(0, 8))
            data[pos] ^= 1 << bit
            label = f"bit {bit} of byte {pos}"
        elif kind in ("zeroed bytes", "random bytes"):
            n = int(rng.integers(1, 65))
            end = min(pos + n, len(data))
            data[pos:end] = bytes(end - pos) if kind == "zeroed bytes" else rng.bytes(end - pos)
            label = f"bytes {pos}..{end - 1}"
        else:
            data = data[:pos]
            label = f"first {pos} of {len(model)} bytes"
        if bytes(data) not in seen:
            seen.add(bytes(data))
            out.append(Variant(kind, label, bytes(data)))
    return out


def force_seal(data: bytes) -> bytes:
    """``data`` with a checksum of its contents, valid graph or not (``integrity.seal``
    refuses to seal a model LiteRT would refuse; this is how a test makes one)."""
    doc = {"algorithm": "sha256", "canonical_form": 1,
           "digest": digest_of(decode_tflite(data), data)}
    return add_metadata(data, {CHECKSUM_NAME: json.dumps(doc, sort_keys=True).encode()})


def _edit(model: bytes, change: Callable) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    obj = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    change(obj)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(obj))


def _ops(m):
    """(subgraph, FULLY_CONNECTED ops, ADD, TANH) of a converted step model, by opcode."""
    sg = m.subgraphs[0]
    code = {i: max(c.builtinCode, c.deprecatedBuiltinCode) for i, c in enumerate(m.operatorCodes)}
    by: dict[int, list] = {}
    for op in sg.operators:
        by.setdefault(code[op.opcodeIndex], []).append(op)
    return sg, by[9], by[0][0], by[28][0]  # FULLY_CONNECTED, ADD, TANH


def _fc(m):
    return _ops(m)[1][0]


def _add(m):
    return _ops(m)[2]


def _tanh(m):
    return _ops(m)[3]


def _weights(m):
    return m.subgraphs[0].tensors[_fc(m).inputs[1]]


def _weight_data(m):
    return m.buffers[_weights(m).buffer]


def _flip_first_weight(m):
    data = _weight_data(m).data.copy()
    data[0] ^= 1
    _weight_data(m).data = data


def _double_first_scale(m):
    scale = list(_weights(m).quantization.scale)
    scale[0] *= 2
    _weights(m).quantization.scale = scale


def _set(get: Callable, name: str, value: Callable | object) -> Callable:
    """An edit that sets ``get(model).name`` to ``value`` (or ``value(model)``)."""
    def edit(m):
        setattr(get(m), name, value(m) if callable(value) else value)
    return edit


def _model(m):
    return m


# (label, edit, still an elman step model when resealed); every edit breaks the checksum
GRAPH_EDITS: list[tuple[str, Callable, bool]] = [
    ("FULLY_CONNECTED with no inputs", _set(_fc, "inputs", []), False),
    ("FULLY_CONNECTED with no outputs", _set(_fc, "outputs", []), False),
    ("ADD with one input", _set(_add, "inputs", lambda m: _add(m).inputs[:1]), False),
    ("TANH reads the state input", _set(_tanh, "inputs", lambda m: m.subgraphs[0].inputs[1:]),
     False),
    ("ADD became TANH", _set(_add, "opcodeIndex", lambda m: _tanh(m).opcodeIndex), False),
    ("opcode index out of range", _set(_add, "opcodeIndex", 77), False),
    ("operator input out of range", _set(_tanh, "inputs", [999]), False),
    ("operator output -1", _set(_tanh, "outputs", [-1]), False),
    ("buffer index out of range", _set(_weights, "buffer", 9999), False),
    ("weights one byte short", _set(_weight_data, "data", lambda m: _weight_data(m).data[:-1]),
     False),
    ("weights as FLOAT32", _set(_weights, "type", 0), False),
    ("weights of an unknown type", _set(_weights, "type", 99), False),
    ("weight scales one short", _set(lambda m: _weights(m).quantization, "scale",
                                     lambda m: _weights(m).quantization.scale[:-1]), False),
    ("weight zero points one short", _set(lambda m: _weights(m).quantization, "zeroPoint",
                                          lambda m: _weights(m).quantization.zeroPoint[:-1]),
     False),
    ("weights quantized along dimension 5",
     _set(lambda m: _weights(m).quantization, "quantizedDimension", 5), False),
    ("negative dimension", _set(_weights, "shape", np.array([-1, 6], np.int32)), False),
    ("FULLY_CONNECTED carries ADD options", _set(_fc, "builtinOptionsType", 11), False),
    ("schema version 2", _set(_model, "version", 2), False),
    ("no subgraphs", _set(_model, "subgraphs", []), False),
    ("two subgraphs", _set(_model, "subgraphs", lambda m: m.subgraphs * 2), False),
    ("subgraph input out of range", _set(lambda m: m.subgraphs[0], "inputs", [0, 500]), False),
    ("metadata points past the buffers",
     _set(lambda m: next(e for e in m.metadata if e.name == b"elman"), "buffer",
          lambda m: len(m.buffers) + 3), False),
    ("operators in reverse order", lambda m: m.subgraphs[0].operators.reverse(), True),
    ("one weight changed", _flip_first_weight, True),
    ("one weight scale doubled", _double_first_scale, True),
]


def graph_variants(model: bytes) -> list[Variant]:
    """Other op graphs: each edit of :data:`GRAPH_EDITS` with the now stale checksum, and,
    for the edits that leave no elman step model, resealed (so that the reader's own
    checks, not the checksum, must refuse it)."""
    out = []
    for label, change, still_valid in GRAPH_EDITS:
        edited = _edit(model, change)
        out.append(Variant("graph edit", label, edited))
        if not still_valid:
            out.append(Variant("graph edit, resealed", label, force_seal(edited)))
    return out


@dataclass
class TrialResult:
    outcomes: Counter = field(default_factory=Counter)  # outcome -> variants
    by_kind: dict[str, Counter] = field(default_factory=dict)
    bad: list[tuple[Variant, str, str]] = field(default_factory=list)  # (variant, stage, what)

    @property
    def tried(self) -> int:
        return sum(self.outcomes.values())

    def table(self) -> str:
        kinds = sorted(self.by_kind)
        width = max(len(k) for k in [*kinds, "all"])
        lines = [f"{'variants':<{width}}  {'tried':>6}" + "".join(f"  {o:>20}" for o in OUTCOMES)]
        for kind, counts in [(k, self.by_kind[k]) for k in kinds] + [("all", self.outcomes)]:
            lines.append(f"{kind:<{width}}  {sum(counts.values()):>6}"
                         + "".join(f"  {counts[o]:>20}" for o in OUTCOMES))
        return "\n".join(lines)


def _comparable(ir) -> dict:
    d = ir.to_dict()
    d.pop("source_sha256")
    d.pop("model_bytes")
    return d


def _stage_outcome(runner: CliRunner, args: list[str], data: bytes, original: dict) -> str:
    result = runner.invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "traceback"
    lines = [s for s in result.output.splitlines() if s.strip()]
    if result.exit_code == 0:
        try:
            same = _comparable(read_ir(data)) == original
        except ElmanError:
            same = False
        return "accepted, same model" if same else "silently accepted"
    errors = [s for s in lines if s.startswith("error:")]
    if result.exit_code == 1 and len(errors) == 1 and "Traceback" not in result.output:
        return "refused cleanly"
    return "traceback"


def run_trial(run_dir: Path, variants: Iterable[Variant], work: Path,
              progress: Callable[[int], None] | None = None) -> TrialResult:
    """Every variant as ``work/run/model_int8.tflite`` (the rest copied from ``run_dir``)
    through ``elman inspect``, ``codegen`` and ``verify --limit 2``."""
    original = _comparable(read_ir(run_dir / rundir.MODEL_TFLITE))
    run = work / "run"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("c", rundir.VERIFY_REPORT,
                                                                rundir.MCU_REPORT))
    runner = CliRunner()
    stages = {
        "inspect": ["inspect", str(run)],
        "codegen": ["codegen", str(run)],
        "verify": ["verify", str(run), "--limit", "2", "--no-float", "--no-progress"],
    }
    result = TrialResult()
    order = {o: i for i, o in enumerate(OUTCOMES)}
    for i, variant in enumerate(variants):
        shutil.rmtree(run / rundir.CODE_DIR, ignore_errors=True)
        (run / rundir.VERIFY_REPORT).unlink(missing_ok=True)
        (run / rundir.MODEL_TFLITE).write_bytes(variant.data)
        worst = "refused cleanly"
        for stage, args in stages.items():
            outcome = _stage_outcome(runner, args, variant.data, original)
            if outcome in ("silently accepted", "traceback"):
                result.bad.append((variant, stage, outcome))
            if order[outcome] > order[worst]:
                worst = outcome
        result.outcomes[worst] += 1
        result.by_kind.setdefault(variant.kind, Counter())[worst] += 1
        if progress is not None:
            progress(i + 1)
    return result
