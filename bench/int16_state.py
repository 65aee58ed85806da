"""int8 vs int16 state, side by side: the acceptance figures of issue 17.

For each task (``sensor:basicmotions``, ``sensor:gunpoint``, ``text:fortunes``) the float
model is trained once per variant (the task's default recipe; an existing
``WORK/<task>[-qat]/model.keras`` is reused) and quantized twice, ``--state int8`` and
``--state int16``, into sibling run directories. Each is verified with every pair
(simulator vs LiteRT BUILTIN_REF, vs TFLite Micro, vs host C, vs emulated Cortex-M0+ and
M4; values compared per pair) and measured on the emulated cores (flash, RAM, instructions
per step, profile tflm, -O2). Against the float model: the task metric (accuracy; text:
bits per character on the validation stream), the hidden-state error in float units (mean,
max, the largest per step) and, for text, the drift: the mean error per window of 10,000
steps over a >= 100,000-step stream. Where the state error comes from (the same held-out
inputs, every step): the float model fed the quantized inputs (input quantization and
clipping alone), the float model with the int8 weights (weights alone), and the quantized
model against the float model with its int8 weights and quantized inputs (what the state
width owns: the integer arithmetic).
Last, the Cortex-M4 -O2 instructions per MAC of 128-unit models (int8 and int16 state).

The text model is smaller than the default recipe (``--text-units``, ``--text-chars``);
the sensor models are the task's default recipe. Each task's float model is trained twice
(``--variants``): ``plain`` (the default ``elman train``) and ``qat`` (``--qat-weights``: the
last fifth of the updates on the int8 grid, as ``elman run --state int16`` trains), so the
float metric of both is measured, and both are quantized with both states. ``--skip-verify``
leaves out verify and the emulated builds (errors and metrics only).

Usage: .venv/bin/python bench/int16_state.py [--tasks basicmotions,gunpoint,fortunes]
       [--variants plain,qat] [--skip-verify] [--work DIR] [--drift-steps 100000]
       [--text-units 128] [--text-chars 4000000]
Prints a table; writes bench/results/int16_state.json. CPU seconds are recorded beside
wall-clock seconds (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from elman.files import dumps_json

RESULTS = Path(__file__).parent / "results" / "int16_state.json"
TASKS = {"basicmotions": "sensor:basicmotions", "gunpoint": "sensor:gunpoint",
         "fortunes": "text:fortunes"}
STATES = ("int8", "int16")
VARIANTS = ("plain", "qat")
CPUS = ("cortex-m4",)  # per task; the 128-unit rows add the Cortex-M0+
DRIFT_WINDOW = 10_000
COPIED = ("model.keras", "data_spec.json", "train_report.json")
# the pairs issue 17 asks for (>= 100,000 values each); other registered cores join verify too
ISSUE_PAIRS = ("LiteRT", "TFLite Micro", "generated C", "Cortex-M0+", "Cortex-M4")


def _clock() -> tuple[float, float]:
    t = os.times()
    return time.perf_counter(), t.user + t.system + t.children_user + t.children_system


def _since(start: tuple[float, float]) -> dict[str, float]:
    wall, cpu = _clock()
    return {"wall_s": round(wall - start[0], 1), "cpu_s": round(cpu - start[1], 1)}


def trained(task: str, work: Path, text_units: int, text_chars: int, variant: str) -> Path:
    from elman.train.api import train_run
    from elman.train.config import TrainConfig

    base = work / (task if variant == "plain" else f"{task}-{variant}")
    if not (base / "model.keras").exists():
        options = {"units": text_units, "chars": text_chars} if task == "fortunes" else {}
        print(f"[{task}] training the float model ({variant}) ...", file=sys.stderr)
        train_run(TASKS[task], base, TrainConfig(**options, qat_weights=variant == "qat"),
                  progress=False)
    return base


def quantized(base: Path, state: str) -> Path:
    """A run directory with the trained model, quantized with ``state`` (a fresh copy: no
    provenance ledger, so each copy is taken as it is)."""
    from elman.quantize.api import quantize_run

    run = base.parent / f"{base.name}-{state}"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    for name in COPIED:
        if (base / name).exists():
            shutil.copy2(base / name, run / name)
    quantize_run(run, progress=False, state=state)
    return run


def measure(task: str, run: Path, state: str, drift_steps: int, variant: str = "plain",
            verify: bool = True) -> dict:
    start = _clock()
    quant = _read_json(run / "quant_report.json")
    ev = quant["evaluation"]
    he = ev["hidden_error"]
    row = {
        "task": task, "state": state, "float_model": variant, "run_dir": str(run),
        "metrics": ev["metrics"],
        "weight_grid": _read_json(run / "train_report.json").get("weight_grid"),
        "evaluated_on": ev.get("stream_steps") or ev.get("sequences"),
        "hidden_error": {"mean": he["mean"], "max": he["max"],
                         "max_per_step_largest": max(he["by_step"]["max"]),
                         "by_step": he["by_step"]},
    }
    if verify:
        row.update(verified(run))
    row["hidden_error_sources"] = error_sources(run)
    if task == "fortunes":
        row["drift"] = text_drift(run, drift_steps)
    row["seconds"] = _since(start)
    return row


def verified(run: Path) -> dict:
    """Every pair of ``elman verify`` (both profiles) and the emulated Cortex-M4 build."""
    from elman.firmware_codegen.api import codegen_run
    from elman.firmware_codegen.arm.api import mcu_run

    from elman.verify import verify_run

    codegen_run(run, profile="tflm")
    verify = verify_run(run, profiles=("tflm", "tflite"), progress=False,
                        raise_on_mismatch=False)
    mcu = mcu_run(run, cpus=CPUS, opts=("O2",), profiles=("tflm",), progress=False)
    return {
        "bit_exact": {"ok": verify["ok"], "pairs": [
            {"pair": f"{p['a']} vs {p['b']}", "compared": p["compared"],
             "compared_hidden": p["compared_hidden"], "mismatches": p["mismatches"]}
            for p in verify["pairs"]]},
        "float_vs_simulator": verify.get("float_vs_int8"),
        "mcu": [{k: b[k] for k in ("cpu", "opt", "profile", "flash", "ram", "state_bytes",
                                   "stack_bytes", "code", "weights_tables",
                                   "instructions_per_step", "instructions_per_mac",
                                   "bit_exact")} for b in mcu["builds"]],
    }


def _int8_weights(model, ir):
    """The float model with the quantized model's int8 weights and biases, dequantized."""
    from dataclasses import replace

    from elman.quantize.float_model import ElmanLayer

    def deq(fc):
        w = fc.weights.astype(np.float64) * fc.weight_scales[:, None].astype(np.float64)
        b = fc.bias.astype(np.float64) * fc.weight_scales * fc.input.scale
        return w.T.astype(np.float32), b.astype(np.float32)

    layers = []
    for layer in ir.layers:
        kernel, bias = deq(layer.input_fc)
        recurrent, _ = deq(layer.recurrent_fc)
        layers.append(ElmanLayer(kernel, recurrent, bias))
    return replace(model, layers=tuple(layers))


def error_sources(run: Path) -> dict:
    """max and mean |h - h_float| over the held-out data (every step; text: the first
    20,000 steps of the validation stream) of: the float model fed the quantized inputs
    (input quantization and clipping alone), the float model with the int8 weights (alone),
    and the quantized model (simulator, tflite profile) against the float model with the
    int8 weights fed the quantized inputs (the integer arithmetic and state width)."""
    from elman.data.held_out import load_held_out
    from elman.quantize.keras_model import read_keras_file
    from elman.quantize.reader import read_ir
    from elman.runtime.simulator import Simulator

    ir = read_ir(run / "model_int8.tflite")
    model = read_keras_file(run / "model.keras", ir.task).model
    held = load_held_out(run, limit=20_000 if ir.task == "language_model" else None)
    if held.tokens:
        x, x_q = model.embed(held.inputs), ir.embedding[held.inputs]
        real = np.ones(held.inputs.shape, bool)
    else:
        x = np.asarray(held.inputs, np.float32)
        x_q = ir.input_quant.quantize(x)
        steps = np.arange(x.shape[1])[None, :]
        real = steps < np.asarray(held.lengths)[:, None]
    x_dq = ir.input_quant.dequantize(x_q).astype(np.float32)
    h_float = model.run(x).h
    weights = _int8_weights(model, ir)
    h_q = ir.state_quant.dequantize(Simulator(ir, "tflite").run(x_q).h)

    def err(a, b):
        e = np.abs(a - b)[real]
        return {"mean": float(e.mean()), "max": float(e.max())}

    return {"quantized_vs_float": err(h_q, h_float),
            "inputs_alone": err(model.run(x_dq).h, h_float),
            "int8_weights_alone": err(weights.run(x).h, h_float),
            "arithmetic": err(h_q, weights.run(x_dq).h),
            "values": int(real.sum() * ir.state_bytes)}


def text_drift(run: Path, steps: int) -> dict:
    """Mean |h - h_float| per window of ``DRIFT_WINDOW`` steps over ``steps`` characters
    (the validation stream, then the training text, one stream, state carried)."""
    from elman.data.spec import load_run_data
    from elman.quantize.keras_model import read_keras_file
    from elman.quantize.reader import read_ir
    from elman.runtime.simulator import Simulator

    data = load_run_data(run)
    ids = np.concatenate([data.val_ids, data.train_ids])[:steps]
    ir = read_ir(run / "model_int8.tflite")
    model = read_keras_file(run / "model.keras", ir.task).model
    windows, state_f, sim = [], None, Simulator(ir, "tflite")
    sim.reset(1)
    for start in range(0, len(ids), DRIFT_WINDOW):
        chunk = ids[None, start:start + DRIFT_WINDOW]
        out_f = model.run(model.embedding[chunk], state_f)
        state_f = tuple(s[:, -1] for s in out_f.states)
        hs = np.empty((chunk.shape[1], ir.state_bytes), np.float64)
        x = ir.embedding[chunk[0]]
        for t in range(chunk.shape[1]):
            h, _ = sim.step(x[t][None])
            hs[t] = ir.state_quant.dequantize(h[0])
        windows.append(float(np.abs(hs - out_f.h[0]).mean()))
    return {"steps": int(len(ids)), "window": DRIFT_WINDOW, "mean_abs_error_by_window": windows,
            "first": windows[0], "last": windows[-1],
            "growth": windows[-1] / windows[0] if windows[0] else None}


def instructions_per_mac_128() -> list[dict]:
    """Cortex-M4 -O2, 128 units (6 inputs, 4 outputs), both states, both profiles: exact
    instructions per MAC, every step checked against the simulator."""
    from elman.firmware_codegen.arm.emulate import run_emulated
    from elman.layers.random_model import random_model
    from elman.runtime.simulator import Simulator

    rows = []
    for bits in (8, 16):
        ir = random_model(6, 128, 4, seed=1, state_bits=bits)
        high = 1 << (bits - 1)
        x = np.random.default_rng(0).integers(-high, high, (1, 4, 6)).astype(ir.state_dtype)
        for profile, cpu in (("tflm", "cortex-m4"), ("tflite", "cortex-m4"),
                             ("tflm", "cortex-m0plus")):
            run = run_emulated(ir, x, profile=profile, cpu=cpu, opt="O2")
            sim = Simulator(ir, profile).run(x)
            np.testing.assert_array_equal(run.outputs.h, sim.h)
            rows.append({"state": f"int{bits}", "profile": profile, "cpu": cpu, "units": 128,
                         "macs_per_step": ir.macs_per_step,
                         "instructions_per_step": run.instructions_per_step,
                         "instructions_per_mac": round(run.instructions_per_mac, 3),
                         "flash": run.sizes["flash"], "stack_bytes": run.stack_bytes})
    return rows


def _read_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text(encoding="utf-8"))


def _metric(row: dict) -> tuple[str, float, float]:
    m = row["metrics"]
    if "bits_per_char" in m["float"]:
        return "bits/char", m["float"]["bits_per_char"], m["int8"]["bits_per_char"]
    return "accuracy", m["float"]["accuracy"], m["int8"]["accuracy"]


def _issue_pair(pair: dict) -> bool:
    return any(name in pair["pair"] for name in ISSUE_PAIRS)


def table(rows: list[dict], macs: list[dict]) -> str:
    lines = [f"{'task':<13}{'float':<7}{'state':<7}{'metric':<10}{'float':>8}{'quant':>8}"
             f"{'h err mean':>12}{'h err max':>11}{'pairs':>7}{'values/pair':>13}"
             f"{'M4 flash':>10}{'M4 RAM':>8}{'M4 instr/step':>15}"]
    for r in rows:
        name, f, q = _metric(r)
        line = (f"{r['task']:<13}{r.get('float_model', 'plain'):<7}{r['state']:<7}{name:<10}"
                f"{f:>8.4f}{q:>8.4f}{r['hidden_error']['mean']:>12.6f}"
                f"{r['hidden_error']['max']:>11.5f}")
        if "bit_exact" in r:
            pairs = [p for p in r["bit_exact"]["pairs"] if _issue_pair(p)]
            exact = sum(p["mismatches"] == 0 for p in pairs)
            m4 = next(b for b in r["mcu"] if b["cpu"] == "cortex-m4")
            line += (f"{f'{exact}/{len(pairs)}':>7}{min(p['compared'] for p in pairs):>13,}"
                     f"{m4['flash']:>10,}{m4['ram']:>8,}{m4['instructions_per_step']:>15,.0f}")
        else:
            line += f"{'(not verified: --skip-verify)':>40}"
        lines.append(line)
        others = [p for p in r.get("bit_exact", {}).get("pairs", []) if not _issue_pair(p)]
        if others:
            lines.append(f"{'':<20}other cores: {sum(p['mismatches'] == 0 for p in others)}/"
                         f"{len(others)} pairs bit-exact, >= "
                         f"{min(p['compared'] for p in others):,} values each")
        src = r["hidden_error_sources"]
        lines.append(f"{'':<20}state error max (mean) from: inputs alone "
                     f"{src['inputs_alone']['max']:.4f} ({src['inputs_alone']['mean']:.5f}), "
                     f"int8 weights alone {src['int8_weights_alone']['max']:.4f} "
                     f"({src['int8_weights_alone']['mean']:.5f}), arithmetic "
                     f"{src['arithmetic']['max']:.4f} ({src['arithmetic']['mean']:.5f})")
        if r["task"] == "fortunes":
            lines.append(f"{'':<20}bits/char over {r['evaluated_on']:,} validation characters")
        if "drift" in r:
            d = r["drift"]
            lines.append(f"{'':<20}drift over {d['steps']:,} steps: mean |error| first "
                         f"{d['window']:,} {d['first']:.6f}, last {d['last']:.6f} "
                         f"(x{d['growth']:.2f})")
    lines += [""] + comparisons(rows)
    lines.append("")
    lines.append("-O2, 128 units (6 inputs, 4 outputs): instructions per MAC")
    for m in macs:
        lines.append(f"  {m['cpu']:<14}{m['state']:<6}{m['profile']:<8}"
                     f"{m['instructions_per_step']:>10,.0f} "
                     f"instr/step  {m['instructions_per_mac']:.3f} instr/MAC  "
                     f"flash {m['flash']:,}")
    return "\n".join(lines)


def comparisons(rows: list[dict]) -> list[str]:
    """Per task and float model: max state error int8 / int16, the quantized metric against
    float; per task: what --qat-weights did to the float metric."""
    lines = []
    by = {(r["task"], r.get("float_model", "plain"), r["state"]): r for r in rows}
    for task in dict.fromkeys(r["task"] for r in rows):
        for variant in VARIANTS:
            int8, int16 = by.get((task, variant, "int8")), by.get((task, variant, "int16"))
            if not (int8 and int16):
                continue
            name, f, q = _metric(int16)
            lines.append(f"{task} ({variant} float model): max state error int8 "
                         f"{int8['hidden_error']['max']:.5f} / int16 "
                         f"{int16['hidden_error']['max']:.5f} = x"
                         f"{int8['hidden_error']['max'] / int16['hidden_error']['max']:.1f}; "
                         f"int16 {name} {q:.4f} vs float {f:.4f} ({q - f:+.4f})")
        plain, qat = by.get((task, "plain", "int16")), by.get((task, "qat", "int16"))
        if plain and qat:
            name, before, _ = _metric(plain)
            _, after, _ = _metric(qat)
            lines.append(f"{task}: --qat-weights changed the float model's {name} from "
                         f"{before:.4f} to {after:.4f} ({after - before:+.4f})")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="float models: plain (elman train), qat (--qat-weights)")
    ap.add_argument("--skip-verify", action="store_true",
                    help="no verify and no emulated builds (errors and metrics only)")
    ap.add_argument("--work", type=Path, default=Path("runs/bench-int16"))
    ap.add_argument("--drift-steps", type=int, default=100_000)
    ap.add_argument("--text-units", type=int, default=128)
    ap.add_argument("--text-chars", type=int, default=4_000_000)
    args = ap.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        ap.error(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    if not variants or set(variants) - set(VARIANTS):
        ap.error(f"--variants: choose from {', '.join(VARIANTS)}")
    start = _clock()
    macs = [] if args.skip_verify else instructions_per_mac_128()
    rows: list[dict] = []

    def write() -> None:  # after every row: a long run keeps what it measured
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(dumps_json({"format": "elman-bench-int16-state/2", "rows": rows,
                                       "instructions_per_mac_128": macs,
                                       "seconds": _since(start)}), encoding="utf-8")

    write()
    for task in tasks:
        for variant in variants:
            base = trained(task, args.work, args.text_units, args.text_chars, variant)
            for state in STATES:
                print(f"[{task}] {variant} float model, {state}: quantize, measure ...",
                      file=sys.stderr)
                rows.append(measure(task, quantized(base, state), state, args.drift_steps,
                                    variant, verify=not args.skip_verify))
                write()
    print(table(rows, macs))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
