"""`elman verify`: every implementation of the int8 program against the simulator.

On the run's held-out data (every test sequence of a classifier; the validation
stream of a text model as one long sequence), the simulator of each profile is
compared, int8 value by int8 value, with each implementation that claims to be
bit-exact with that profile: LiteRT's reference kernels (``tflite``) and the
TFLite Micro interpreter (``tflm``); later stages add their own (generated C,
emulated Cortex-M) to ``IMPLEMENTATIONS``. The float Keras model is compared by
task metrics only. Results go to ``verify_report.json``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from elman.firmware_codegen.arm.emulate import emulated_implementations
from elman.firmware_codegen.host import host_c_implementations
from elman.profiles import PROFILE_NAMES, check_profile
from elman.quantize.ir import QuantizedRNN
from elman.runtime.compare import PairResult, compare_outputs
from elman.runtime.float_expectation import (
    check_hidden_error,
    expected_hidden_error,
    hidden_error_message,
)
from elman.runtime.float_reference import float_metrics
from elman.runtime.interpreters import check_model_loads, run_litert, run_tflm
from elman.runtime.simulator import Simulator, StepOutputs, resolve_engine

from elman import provenance, rundir
from elman.errors import ElmanError, VerificationError

REPORT_FORMAT = 1


@dataclass(frozen=True)
class VerifyInputs:
    """The held-out data, ready for every implementation."""

    x_q: np.ndarray  # int8 (B, T, D): quantized inputs (text: embedding rows of ids)
    ids: np.ndarray | None  # int (B, T) token ids of a text model, else None
    labels: np.ndarray | None  # int (B,) class labels of a classifier, else None
    x_float: np.ndarray | None  # float (B, T, D) normalized inputs of a classifier, else None
    description: str  # e.g. "test split, 40 sequences x 100 steps"
    # int (B,) true lengths: sequence b is steps 0..lengths[b]-1, padding after (None: all T)
    lengths: np.ndarray | None = None

    @property
    def sequences(self) -> int:
        return int(self.x_q.shape[0])

    @property
    def steps(self) -> int:
        return int(self.x_q.shape[1])

    def prefix(self, max_steps: int) -> tuple[VerifyInputs, tuple[slice, slice]]:
        """The first sequences (classification) or steps (one text stream) that hold at
        most ``max_steps`` sequence-steps (at least one step), and the (sequence, step)
        slices that cut the same part out of any (B, T, ...) output."""
        if self.sequences * self.steps <= max_steps:
            return self, (slice(None), slice(None))
        if self.ids is not None:
            n = max(1, max_steps // self.sequences)
            cut = (slice(None), slice(0, n))
            desc = f"first {n} of {self.steps} steps of the {self.description}"
        else:
            n = max(1, max_steps // self.steps)
            cut = (slice(0, n), slice(None))
            desc = f"first {n} sequences of the {self.description}"
        return VerifyInputs(
            self.x_q[cut], None if self.ids is None else self.ids[cut],
            None if self.labels is None else self.labels[cut[0]],
            None if self.x_float is None else self.x_float[cut], desc,
            None if self.lengths is None else np.minimum(self.lengths[cut[0]], n)
            if self.ids is not None else self.lengths[cut[0]]), cut


@dataclass(frozen=True)
class VerifyContext:
    """What an implementation factory gets to build its runners."""

    run_dir: Path
    ir: QuantizedRNN
    model: bytes  # the .tflite step model
    profiles: tuple[str, ...]
    progress: bool
    engine: str = "numba"  # the simulator engine every pair is compared with


@dataclass(frozen=True)
class Implementation:
    """One implementation that must equal the simulator of ``profile`` bit for bit.

    ``max_steps``: the sequence-steps it can afford (a slow emulator); it is then
    compared on that prefix of the data, and the report says so.
    """

    name: str
    profile: str
    run: Callable[[VerifyInputs], StepOutputs]
    max_steps: int | None = None


ImplementationFactory = Callable[[VerifyContext], list[Implementation]]


def _progress_bar(ctx: VerifyContext, total: int, name: str):
    if not ctx.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="step", leave=False)


def _interpreter_run(ctx: VerifyContext, runner, name: str) -> Callable[[VerifyInputs],
                                                                          StepOutputs]:
    def run(inputs: VerifyInputs) -> StepOutputs:
        bar = _progress_bar(ctx, inputs.sequences * inputs.steps, name)
        try:
            return runner(ctx.model, ctx.ir, inputs.x_q,
                          progress=None if bar is None else bar.update)
        finally:
            if bar is not None:
                bar.close()

    return run


def interpreter_implementations(ctx: VerifyContext) -> list[Implementation]:
    """LiteRT ``BUILTIN_REF`` (profile ``tflite``) and TFLite Micro (profile ``tflm``)."""
    out = []
    if "tflite" in ctx.profiles:
        name = "LiteRT BUILTIN_REF"
        out.append(Implementation(name, "tflite", _interpreter_run(ctx, run_litert, name)))
    if "tflm" in ctx.profiles:
        name = "TFLite Micro"
        out.append(Implementation(name, "tflm", _interpreter_run(ctx, run_tflm, name)))
    return out


NUMPY_ENGINE = "simulator, numpy engine"


def engine_implementations(ctx: VerifyContext) -> list[Implementation]:
    """Where the simulator runs compiled (numba), its numpy reference engine too: the
    proof that the fast engine computed what the reference computes, on this data."""
    if ctx.engine != "numba":
        return []

    def reference(profile: str) -> Callable[[VerifyInputs], StepOutputs]:
        return lambda inputs: Simulator(ctx.ir, profile, engine="numpy").run(inputs.x_q)

    return [Implementation(f"{NUMPY_ENGINE} ({p})", p, reference(p)) for p in ctx.profiles]


# Every factory here is asked for its implementations; the generated C and the emulated
# Cortex-M stages append theirs (one line each).
IMPLEMENTATIONS: list[ImplementationFactory] = [interpreter_implementations,
                                                engine_implementations]
IMPLEMENTATIONS.append(host_c_implementations)  # generated C vs simulator (firmware_codegen)
IMPLEMENTATIONS.append(emulated_implementations)  # emulated Cortex-M vs simulator (arm)


def load_verify_inputs(run_dir: Path, ir: QuantizedRNN, limit: int | None = None
                       ) -> VerifyInputs:
    """The run's held-out data, quantized with the IR's input parameters.

    ``limit``: at most that many sequences (classification) or steps (text).
    """
    from elman.data.held_out import load_held_out

    held = load_held_out(run_dir, limit=limit)
    if held.task != ir.task:
        raise ElmanError(f"{run_dir}: the data is for {held.task} but the model is {ir.task}")
    if held.tokens:
        ids = held.inputs
        if ids.size == 0:
            raise ElmanError(f"{run_dir}: the validation stream is empty")
        if ids.max() >= ir.vocab_size:
            raise ElmanError(f"{run_dir}: token id {ids.max()} outside the model's vocabulary "
                             f"of {ir.vocab_size}")
        from elman.runtime.simulator import embed_tokens

        return VerifyInputs(embed_tokens(ir, ids), ids, None, None, held.description)
    x = held.inputs
    if x.shape[0] == 0:
        raise ElmanError(f"{run_dir}: the test split is empty")
    if x.shape[2] != ir.input_dim:
        raise ElmanError(f"{run_dir}: the data has {x.shape[2]} channels, the model "
                         f"{ir.input_dim}")
    return VerifyInputs(ir.input_quant.quantize(x), None, held.targets, x, held.description,
                        held.lengths)


def _simulate(ir: QuantizedRNN, profile: str, inputs: VerifyInputs, engine: str
              ) -> StepOutputs:
    return Simulator(ir, profile, engine).run(inputs.x_q)


def verify_run(run_dir: Path | str, profiles: tuple[str, ...] | list[str] = ("tflm", "tflite"),
               limit: int | None = None, progress: bool = True, *,
               float_model: bool = True, raise_on_mismatch: bool = True,
               engine: str = "auto") -> dict[str, Any]:
    """Compare every implementation with the simulator on the run's held-out data.

    ``engine``: the simulator engine (``auto``, ``numba`` or ``numpy``); with
    ``numba``, the numpy reference engine is one more pair.

    Writes ``verify_report.json`` (also when something disagrees), then raises
    :class:`VerificationError` on any mismatch unless ``raise_on_mismatch`` is False.
    """
    from elman.quantize.reader import read_ir

    run_dir = Path(run_dir)
    profiles = tuple(dict.fromkeys(profiles))
    if not profiles:
        raise ElmanError(f"choose at least one profile of {PROFILE_NAMES}")
    for p in profiles:
        try:
            check_profile(p)
        except ValueError as exc:
            raise ElmanError(str(exc)) from None
    stage_run = provenance.begin(run_dir, "verify", reads=[rundir.MODEL_TFLITE],
                                 optional=[rundir.DATA_SPEC, rundir.MODEL_KERAS])
    model_path = run_dir / rundir.MODEL_TFLITE
    ir = read_ir(model_path)  # a directory, an unreadable or a damaged file: one error
    model = model_path.read_bytes()
    check_model_loads(model, ir, profiles)  # both interpreters take it, before any work
    inputs = load_verify_inputs(run_dir, ir, limit)
    try:
        engine = resolve_engine(engine)
    except ValueError as exc:
        raise ElmanError(str(exc)) from None
    ctx = VerifyContext(run_dir, ir, model, profiles, progress, engine)

    simulated = {p: _simulate(ir, p, inputs, engine) for p in profiles}
    pairs: list[dict[str, Any]] = []
    results: list[PairResult] = []
    for factory in IMPLEMENTATIONS:
        for impl in factory(ctx):
            if impl.profile not in simulated:
                continue
            used, cut = inputs, (slice(None), slice(None))
            if impl.max_steps is not None:
                used, cut = inputs.prefix(impl.max_steps)
            start = time.perf_counter()
            outputs = impl.run(used)
            seconds = time.perf_counter() - start
            sim = simulated[impl.profile]
            if used is not inputs:
                sim = StepOutputs(h=sim.h[cut], y=None if sim.y is None else sim.y[cut])
            result = compare_outputs(f"simulator ({impl.profile})", impl.name, sim, outputs)
            results.append(result)
            pairs.append({**result.to_dict(), "profile": impl.profile, "exact": True,
                          "data": used.description, "seconds": round(seconds, 3)})

    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "model": {"file": rundir.MODEL_TFLITE, "sha256": ir.source_sha256, "task": ir.task,
                  "input_dim": ir.input_dim, "units": ir.units, "output_dim": ir.output_dim},
        "data": {"description": inputs.description, "sequences": inputs.sequences,
                 "steps": inputs.steps, "limit": limit},
        "profiles": list(profiles),
        "simulator_engine": engine,
        "pairs": pairs,
        "ok": all(r.ok for r in results),
    }
    keras_path = run_dir / rundir.MODEL_KERAS
    if float_model and keras_path.exists():
        from elman.quantize.keras_model import read_keras_file

        float_model = read_keras_file(keras_path, ir.task).model
        report["float_vs_int8"] = [float_metrics(float_model, ir, inputs, simulated[p], p)
                                   for p in profiles]
        report["state_error"] = check_hidden_error(
            report["float_vs_int8"], expected_hidden_error(run_dir, ir, inputs.sequences))
    with stage_run.outputs() as stage:
        stage.write_json(rundir.VERIFY_REPORT, report)
    if raise_on_mismatch and not report["ok"]:
        raise VerificationError(mismatch_message(report))
    if raise_on_mismatch and state_error_failed(report):
        raise VerificationError(hidden_error_message(report["state_error"]))
    return report


def state_error_failed(report: dict[str, Any]) -> bool:
    """The int8 state is far further from float than quantize measured (see
    :mod:`elman.runtime.float_expectation`)."""
    return (report.get("state_error") or {}).get("ok") is False


def mismatch_message(report: dict[str, Any]) -> str:
    bad = [p for p in report["pairs"] if not p["ok"]]
    parts = []
    for p in bad:
        f = p["first_mismatch"]
        parts.append(f"{p['a']} vs {p['b']}: {p['mismatches']} of {p['compared']} int8 values "
                     f"differ (max {p['max_abs_diff_lsb']} LSB), first at sequence "
                     f"{f['sequence']}, step {f['step']}, {f['kind']}[{f['unit']}]: "
                     f"{f['a']} vs {f['b']}")
    return "not bit-exact: " + "; ".join(parts) + f" (see {rundir.VERIFY_REPORT})"


def format_table(report: dict[str, Any]) -> str:
    """The report as a plain-text table (one line per pair, then the float metrics)."""
    head = ("pair", "values", "hidden", "mismatches", "max |diff| LSB", "first mismatch")
    rows = []
    for p in report["pairs"]:
        f = p["first_mismatch"]
        first = "-" if f is None else (f"seq {f['sequence']} step {f['step']} "
                                       f"{f['kind']}[{f['unit']}]: {f['a']} vs {f['b']}")
        rows.append((f"{p['a']} vs {p['b']}", f"{p['compared']:,}",
                     f"{p['compared_hidden']:,}", f"{p['mismatches']:,}",
                     str(p["max_abs_diff_lsb"]), first))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(head)]
    lines = [f"data: {report['data']['description']}",
             "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    for p in report["pairs"]:
        if p.get("data", report["data"]["description"]) != report["data"]["description"]:
            lines.append(f"  ({p['a']} vs {p['b']}: on the {p['data']})")
    floats = report.get("float_vs_int8") or []
    if floats:
        names = sorted({k for f in floats for k in f["metrics"]})
        lines.append("")
        lines.append("float Keras vs int8 simulator (task metrics, not bit-exact):")
        width = max(len(n) for n in names)
        lines.append("  " + "".ljust(width) + "".join(f"  {f['profile']:>10}" for f in floats))
        for n in names:
            cells = "".join(f"  {f['metrics'].get(n, float('nan')):>10.4g}" for f in floats)
            lines.append("  " + n.ljust(width) + cells)
        check = report.get("state_error") or {}
        if check.get("ok") is not None:
            lines.append(f"  state error vs quantize's {check['expected']:.4g} (bound "
                         f"{check['bound']:.4g}): " + ("within" if check["ok"] else "FAR ABOVE"))
    lines.append("")
    lines.append("bit-exact: " + ("yes, every pair" if report["ok"] else "NO"))
    return "\n".join(lines)
