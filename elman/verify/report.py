"""``elman verify``: every implementation of the int8 program against the simulator.

On the run's held-out data (every test sequence of a classifier; the validation
stream of a text model as one long sequence), the simulator of each profile is
compared, int8 value by int8 value (every layer's state and the outputs of every
step; of a sequence shorter than the padded batch, only its real steps), with
each implementation that claims to be bit-exact with that profile
(``elman.verify.implementations``: LiteRT's reference kernels, TFLite Micro,
the numpy engine, the generated C on this machine and on emulated Cortex-M
cores). The float Keras model is compared by task metrics only. Results go to
``verify_report.json``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from elman import provenance, rundir
from elman.errors import ElmanError, VerificationError
from elman.profiles import PROFILE_NAMES, check_profile
from elman.quantize.ir import QuantizedModel
from elman.runtime.compare import PairResult, compare_outputs
from elman.runtime.float_expectation import (
    check_hidden_error,
    expected_hidden_error,
    hidden_error_message,
)
from elman.runtime.float_reference import float_metrics
from elman.runtime.interpreters import check_model_loads
from elman.runtime.outputs import StepOutputs
from elman.runtime.simulator import Simulator, resolve_engine
from elman.verify import implementations
from elman.verify.implementations import VerifyContext
from elman.verify.inputs import VerifyInputs, load_verify_inputs

REPORT_FORMAT = 2


def _simulate(ir: QuantizedModel, profile: str, inputs: VerifyInputs, engine: str
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
    for factory in implementations.IMPLEMENTATIONS:
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
            # unequal lengths: each sequence's real steps only, never its padding
            result = compare_outputs(f"simulator ({impl.profile})", impl.name, sim, outputs,
                                     used.lengths)
            results.append(result)
            pairs.append({**result.to_dict(), "profile": impl.profile, "exact": True,
                          "data": used.description, "seconds": round(seconds, 3)})

    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "model": {"file": rundir.MODEL_TFLITE, "sha256": ir.source_sha256, "task": ir.task,
                  "input_dim": ir.input_dim, "layer_units": list(ir.layer_units),
                  "state_bytes": ir.state_bytes, "state_bits": ir.state_bits,
                  "output_dim": ir.output_dim,
                  "head_every_step": ir.head_every_step},
        "data": {"description": inputs.description, "sequences": inputs.sequences,
                 "steps": inputs.steps, "limit": limit,
                 "real_steps": (inputs.sequences * inputs.steps if inputs.lengths is None
                                else int(inputs.lengths.sum()))},
        "profiles": list(profiles),
        "simulator_engine": engine,
        "pairs": pairs,
        "ok": all(r.ok for r in results),
    }
    keras_path = run_dir / rundir.MODEL_KERAS
    if float_model and keras_path.exists():
        from elman.quantize.keras_model import read_keras_file

        float_elman = read_keras_file(keras_path, ir.task).model
        report["float_vs_int8"] = [float_metrics(float_elman, ir, inputs, simulated[p], p)
                                   for p in profiles]
        report["state_error"] = check_hidden_error(
            report["float_vs_int8"], expected_hidden_error(run_dir, ir, inputs.sequences),
            ir.state_quant.scale)
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


def _seconds(pair: dict[str, Any]) -> str:
    """The time an implementation took on its data (reports before format 2 lack it)."""
    return "-" if pair.get("seconds") is None else f"{pair['seconds']:.1f}"


def format_table(report: dict[str, Any]) -> str:
    """The report as a plain-text table (one line per pair, then the float metrics)."""
    head = ("pair", "values", "hidden", "mismatches", "max |diff| LSB", "seconds",
            "first mismatch")
    rows = []
    for p in report["pairs"]:
        f = p["first_mismatch"]
        first = "-" if f is None else (f"seq {f['sequence']} step {f['step']} "
                                       f"{f['kind']}[{f['unit']}]: {f['a']} vs {f['b']}")
        rows.append((f"{p['a']} vs {p['b']}", f"{p['compared']:,}",
                     f"{p['compared_hidden']:,}", f"{p['mismatches']:,}",
                     str(p["max_abs_diff_lsb"]), _seconds(p), first))
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
