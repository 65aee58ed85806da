"""``mcu_run``: build the model's C for Cortex-M cores, measure it, run it, prove it.

For every profile × cpu × optimization level: a bare-metal image (sizes split
into code, weights/tables and state), then the step executed in unicorn over
held-out real sequences of the run's own data, compared bit for bit with the
simulator, with exact instruction counts per step and per multiply-accumulate
and the stack the step used. The TFLite Micro comparison (``.tflite`` size,
measured arena, published framework size) goes in the same report.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from elman.firmware_codegen.arm.emulate import EmulatedRun, run_emulated, run_emulated_tokens
from elman.firmware_codegen.arm.tflm_footprint import tflm_footprint
from elman.firmware_codegen.arm.toolchain import check_cpu_opt, find_toolchain
from elman.quantize.ir import QuantizedModel
from elman.targets import TARGETS, get_target
from elman.targets.clock import DEFAULT_CLOCK_HZ, format_clock, parse_clock
from elman.targets.simavr import fits
from tqdm import tqdm

from elman import provenance, rundir
from elman.errors import VerificationError

DEFAULT_CPUS = tuple(TARGETS)  # every registered core
DEFAULT_OPTS = ("O2", "Os")
DEFAULT_PROFILES = ("tflm", "tflite")
DEFAULT_SEQUENCES = 8
TEXT_WINDOW = 64


def held_out_inputs(run_dir: Path | str, ir: QuantizedModel,
                    limit: int | None = DEFAULT_SEQUENCES) -> tuple[np.ndarray, bool, str]:
    """Real held-out inputs: int8 (N, T, D) test sequences, or (N, T) validation token
    windows of a text model. Returns (inputs, are_tokens, description)."""
    from elman.data.held_out import load_held_out

    held = load_held_out(run_dir, limit=limit, window=TEXT_WINDOW)
    inputs = held.inputs if held.tokens else ir.input_quant.quantize(held.inputs)
    return inputs, held.tokens, f"{held.description} of {held.source}"


def emulate_and_compare(ir: QuantizedModel, inputs: np.ndarray, *, tokens: bool, profile: str,
                        cpu: str, opt: str, prefix: str = "elman") -> tuple[EmulatedRun, Any]:
    """Run the C on the emulated core and compare every step with the simulator."""
    from elman.runtime.compare import compare_outputs
    from elman.runtime.simulator import Simulator

    sim = Simulator(ir, profile)
    if tokens:
        run = run_emulated_tokens(ir, inputs, profile=profile, cpu=cpu, opt=opt, prefix=prefix)
        expected = sim.run_tokens(inputs)
    else:
        run = run_emulated(ir, inputs, profile=profile, cpu=cpu, opt=opt, prefix=prefix)
        expected = sim.run(inputs)
    pair = compare_outputs(f"emulated {cpu} -{opt}", f"simulator ({profile})", run.outputs,
                           expected)
    return run, pair


def build_row(ir: QuantizedModel, run: EmulatedRun, pair: Any,
              clock_hz: float = DEFAULT_CLOCK_HZ) -> dict[str, Any]:
    """One row of the report: sizes, stack, instruction counts, cycles (estimated, or exact
    where the emulator counts them) and time at ``clock_hz``, bit-exactness."""
    s = run.sizes
    # the caller's <prefix>_state_t: one int8 (int16 state: int16) per unit of every layer
    state = ir.state_bytes * (2 if ir.state_bits == 16 else 1)
    row: dict[str, Any] = {
        "profile": run.profile, "cpu": run.cpu, "opt": run.opt,
        # RAM the model needs while it runs: static data + the state + the step's stack
        "flash": s["flash"], "ram": s["ram"] + state + run.stack_bytes,
        "ram_static": s["ram"], "state_bytes": state, "stack_bytes": run.stack_bytes,
        "code": s["code"], "weights_tables": s["weights_tables"], "data": s["data"],
        "bss": s["bss"], "other_flash": s["other_flash"],
        "instructions_per_step": round(run.instructions_per_step, 1),
        "instructions_per_mac": round(run.instructions_per_mac, 3),
        "instructions_per_step_min": run.instructions_min,
        "instructions_per_step_max": run.instructions_max,
        "matvec_instructions_per_mac": None if run.matvec_instructions_per_mac is None
        else round(run.matvec_instructions_per_mac, 3),
        "requantize_instructions_per_unit": None if run.matvec_instructions_per_step is None
        else round((run.instructions_per_step - run.matvec_instructions_per_step)
                   / ir.state_bytes, 1),
        "instructions_by_function": {k: round(v, 1) for k, v in run.by_function.items()},
        "cycles_per_step": None if run.cycles_per_step is None else round(run.cycles_per_step, 1),
        "cycles_per_step_max": None if run.cycles_max is None else round(run.cycles_max, 1),
        "cycles_per_mac": None if run.cycles_per_step is None
        else round(run.cycles_per_step / ir.macs_per_step, 3),
        "cycles_exact": run.cycles_exact,
        "clock_hz": clock_hz,
        "microseconds_per_step": None if run.cycles_per_step is None
        else round(run.microseconds_per_step(clock_hz), 2),
        "bit_exact": bool(pair.ok),
        "comparison": pair.to_dict(),
    }
    return row


def mcu_run(run_dir: Path | str, cpus: Sequence[str] | None = None,
            opts: Sequence[str] = DEFAULT_OPTS, profiles: Sequence[str] = DEFAULT_PROFILES,
            limit: int | None = DEFAULT_SEQUENCES, prefix: str = "elman",
            progress: bool = True, clock: str | float | None = None) -> dict[str, Any]:
    """Build, size, emulate and verify the run's model on every cpu × opt × profile
    (``cpus`` None: every registered core the model fits; a named core that it does not fit
    is an error); latency in time at ``clock`` (``64MHz``, or Hz; None: each core's own,
    64 MHz but 16 MHz for the Uno) from each target's cycles; writes ``mcu_report.json`` and
    returns it. A bit-exactness failure is written to the report, then raised as a
    VerificationError."""
    from elman.quantize.reader import read_ir

    run_dir = Path(run_dir)
    clock_hz = None if clock is None else parse_clock(clock)
    stage_run = provenance.begin(run_dir, "mcu", reads=[rundir.MODEL_TFLITE],
                           optional=[rundir.DATA_SPEC])
    model_path = run_dir / rundir.MODEL_TFLITE
    opts, profiles = tuple(opts), tuple(profiles)
    chosen = tuple(dict.fromkeys(get_target(c).name for c in (cpus or DEFAULT_CPUS)))
    for cpu in chosen:
        for opt in opts:
            check_cpu_opt(cpu, opt)
    ir = read_ir(model_path)
    cpus = chosen if cpus else tuple(c for c in chosen if all(
        fits(ir, c, profile=p, opt=o) for p in profiles for o in opts))
    skipped = [c for c in chosen if c not in cpus]
    toolchains = {c: find_toolchain(c).version() for c in cpus}  # all present, up front
    inputs, tokens, described = held_out_inputs(run_dir, ir, limit)
    combos = [(p, c, o) for p in profiles for c in cpus for o in opts]
    rows = []
    for profile, cpu, opt in tqdm(combos, desc="mcu builds", unit="build", disable=not progress):
        run, pair = emulate_and_compare(ir, inputs, tokens=tokens, profile=profile, cpu=cpu,
                                        opt=opt, prefix=prefix)
        rows.append(build_row(ir, run, pair, clock_hz or get_target(cpu).clock_hz))
    report = {
        "model": {"input_dim": ir.input_dim, "layer_units": list(ir.layer_units),
                  "state_bytes": ir.state_bytes, "output_dim": ir.output_dim,
                  "vocab_size": ir.vocab_size, "macs_per_step": ir.macs_per_step,
                  "task": ir.task, "tflite_sha256": ir.source_sha256},
        "data": {"description": described, "sequences": int(inputs.shape[0]),
                 "steps_per_sequence": int(inputs.shape[1])},
        "toolchain": toolchains,
        "clock_hz": clock_hz,  # None: each core's own (its rows say)
        "skipped": {c: f"the model does not fit the {get_target(c).title}" for c in skipped},
        "emulator": {c: f"{t.emulator} ({t.emulator_cpu})" for c, t in
                     ((c, get_target(c)) for c in cpus)},
        "counts": "instruction counts are exact executed instructions; cycles are each "
                  "target's cycle model applied to them (an estimate)",
        "targets": {c: get_target(c).to_dict() for c in cpus},
        "builds": rows,
        "all_bit_exact": all(r["bit_exact"] for r in rows),
        "tflm": tflm_footprint(model_path),
    }
    with stage_run.outputs() as stage:
        stage.write_json(rundir.MCU_REPORT, report)
    bad = [r for r in rows if not r["bit_exact"]]
    if bad:
        first = bad[0]
        raise VerificationError(
            f"emulated {first['cpu']} -{first['opt']} ({first['profile']}) differs from the "
            f"simulator: {first['comparison'].get('first_mismatch')}; "
            f"(see {run_dir / rundir.MCU_REPORT})")
    return report


def format_table(report: dict[str, Any]) -> str:
    """The builds of a report as a fixed-width text table."""
    head = (f"{'profile':<7} {'cpu':<13} {'opt':<3} {'flash':>7} {'code':>6} {'weights':>7} "
            f"{'RAM':>5} {'stack':>5} {'instr/step':>10} {'instr/MAC':>9} {'matvec/MAC':>10} "
            f"{'other/unit':>10} {'cycles/step':>11} {'us/step':>8} {'bit-exact':>9}")
    lines = [head, "-" * len(head)]
    # matvec/MAC: instructions inside the matrix-vector kernel per MAC of the step;
    # other/unit: the rest of the step (requantization, ADD, TANH, copies) per unit
    for r in report["builds"]:
        mv = r["matvec_instructions_per_mac"]
        per_unit = r["requantize_instructions_per_unit"]
        lines.append(
            f"{r['profile']:<7} {r['cpu']:<13} {r['opt']:<3} {r['flash']:>7} {r['code']:>6} "
            f"{r['weights_tables']:>7} {r['ram']:>5} {r['stack_bytes']:>5} "
            f"{r['instructions_per_step']:>10.1f} {r['instructions_per_mac']:>9.3f} "
            f"{'-' if mv is None else f'{mv:.3f}':>10} "
            f"{'-' if per_unit is None else f'{per_unit:.1f}':>10} "
            f"{_number(r.get('cycles_per_step'), '.0f'):>11} "
            f"{_number(r.get('microseconds_per_step'), '.1f'):>8} "
            f"{'yes' if r['bit_exact'] else 'NO':>9}")
    t = report.get("tflm") or {}
    lines.append("RAM = static data + the caller's state + the deepest stack of a step; "
                 "flash = code + weights/tables + initialized data")
    clocks = {r["cpu"]: r["clock_hz"] for r in report["builds"]}
    at = format_clock(report["clock_hz"]) if report.get("clock_hz") else ", ".join(
        f"{format_clock(hz)} ({c})" for c, hz in clocks.items())
    exact = [c for c in clocks if any(r["cpu"] == c and r.get("cycles_exact")
                                      for r in report["builds"])]
    lines.append("instructions: exact; cycles: each core's cycle model (an estimate, "
                 "elman.targets.cycles)"
                 + (f", exact on {', '.join(exact)} (counted by simavr)" if exact else "")
                 + f"; us/step at {at}")
    for cpu, why in (report.get("skipped") or {}).items():
        lines.append(f"{cpu}: skipped ({why}; name it with --cpu to see the sizes)")
    lines.append("")
    lines.append(f"TFLite Micro, same model: .tflite {t.get('tflite_bytes')} B (measured), "
                 f"arena {t.get('arena_bytes')} B (measured, 64-bit host interpreter), "
                 f"framework code {t.get('framework_code_bytes')} B (published, Cortex-M3)")
    return "\n".join(lines)


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
