"""Cost of the generated step on every registered core: flash, RAM, stack, exact instructions
per step and MAC, estimated cycles and microseconds per step at a stated clock.

Models: random-weight IRs of 32, 64, 128 and 256 units and two stacked layers of 128,
BasicMotions-shaped (6 inputs, 4 classes), and the real BasicMotions model of a run
directory (``--run``; without it a 16-unit run is trained and quantized first, ~1 minute;
``--no-real`` skips it). Each model is built at -O2 for every core of ``elman.targets``
(Cortex-M0+, M4, M7, M33 in unicorn; Cortex-M55 with Helium under QEMU mps3-an547;
RISC-V RV32IMC in unicorn; the Arduino Uno's ATmega328P in simavr, where the model fits its
32 KB flash), both arithmetic profiles, plus the M4 and the Uno at -Os and the M4 with the
portable C kernels; every step is checked bit for bit against the simulator before its
count is used. Instruction counts are exact executed instructions, head included on every
step; cycles are each core's cycle model (``elman.targets.cycles``: an estimate), except on
the Uno, where simavr counts them exactly. Time per step at --clock, else at each core's
own clock (64 MHz; the Uno's 16 MHz).
The issue's goals (instructions per MAC, -O2, tflm) are printed as met / NOT met.

Usage: .venv/bin/python bench/mcu.py [--run RUN_DIR | --no-real] [--steps 4] [--clock 64MHz]
       [--cpu cortex-m55 ...] [--units 128 ...]
The Uno alone, as the README's table: bench/mcu.py --cpu atmega328p --units 16 --units 32
       --units 64 --units 128 --json bench/results/uno.json
Writes bench/results/mcu.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from elman.firmware_codegen.arm.api import held_out_inputs
from elman.firmware_codegen.arm.emulate import run_emulated
from elman.firmware_codegen.arm.toolchain import find_toolchain
from elman.layers.random_model import random_model
from elman.quantize.reader import read_ir
from elman.runtime.simulator import Simulator
from elman.targets import TARGETS
from elman.targets.clock import format_clock, parse_clock
from elman.targets.simavr import fits

from elman.files import dumps_json

RESULTS = Path(__file__).parent / "results" / "mcu.json"
SIZES = ((32,), (64,), (128,), (256,), (128, 128))
INPUT_DIM, CLASSES = 6, 4
# (cpu, opt, portable): every core at -O2; the M4 also at -Os and with the portable kernels
EXTRA_BUILDS = (("cortex-m4", "Os", False), ("cortex-m4", "O2", True),
                ("atmega328p", "Os", False))
# the goals: (cpu, units) -> instructions per MAC of the whole step, -O2, tflm
GOALS = {("cortex-m4", 128): 1.75, ("cortex-m4", 32): 2.8, ("cortex-m0plus", 128): 5.0,
         ("cortex-m0plus", 64): 5.5, ("cortex-m55", 128): 0.5, ("rv32imc", 128): 4.0}


def _real_run(run: Path | None, scratch: Path) -> Path:
    if run is not None:
        return run
    from elman.quantize.api import quantize_run
    from elman.train.api import TrainConfig, train_run

    out = scratch / "bm16"
    print("training a 16-unit BasicMotions run for the real-model rows ...", file=sys.stderr)
    train_run("sensor:basicmotions", out, TrainConfig(units=16, epochs=8, seed=0,
                                                     diagnostics=False), progress=False)
    quantize_run(out, progress=False)
    return out


def _kernels(cpu: str, portable: bool) -> str:
    names = {"dsp": "DSP", "mve": "MVE", "armv6m": "ARMv6-M", "portable": "portable C",
             "avr": "AVR MULS"}
    return "portable C" if portable else names[TARGETS[cpu].kernels]


def _rows(name: str, ir, x_q: np.ndarray, builds, clock: float | None) -> list[dict]:
    rows = []
    for profile in ("tflm", "tflite"):
        expected = Simulator(ir, profile).run(x_q)
        for cpu, opt, portable in builds:
            if not fits(ir, cpu, profile=profile, opt=opt):
                print(f"{name:<24} {profile:<7} {cpu:<13} {opt:<3} does not fit", flush=True)
                continue
            clock_hz = clock or TARGETS[cpu].clock_hz
            run = run_emulated(ir, x_q, profile=profile, cpu=cpu, opt=opt, portable=portable)
            np.testing.assert_array_equal(run.outputs.h, expected.h)
            np.testing.assert_array_equal(run.outputs.y, expected.y)
            other = None if run.matvec_instructions_per_step is None else (
                (run.instructions_per_step - run.matvec_instructions_per_step) / ir.state_bytes)
            rows.append({
                "model": name, "units": list(ir.layer_units), "macs_per_step": ir.macs_per_step,
                "profile": profile, "cpu": cpu, "opt": opt, "kernels": _kernels(cpu, portable),
                "emulator": TARGETS[cpu].emulator,
                "flash": run.sizes["flash"], "code": run.sizes["code"],
                "weights_tables": run.sizes["weights_tables"], "ram": run.sizes["ram"],
                "stack": run.stack_bytes, "steps": int(x_q.shape[0] * x_q.shape[1]),
                "instructions_per_step": round(run.instructions_per_step, 1),
                "instructions_per_mac": round(run.instructions_per_mac, 3),
                "matvec_instructions_per_mac": None if run.matvec_instructions_per_mac is None
                else round(run.matvec_instructions_per_mac, 3),
                "other_instructions_per_unit": None if other is None else round(other, 1),
                "cycles_per_step": round(run.cycles_per_step, 1),
                "cycles_per_mac": round(run.cycles_per_step / ir.macs_per_step, 3),
                "cycles_exact": run.cycles_exact, "clock_hz": clock_hz,
                "microseconds_per_step": round(run.microseconds_per_step(clock_hz), 2),
                "ram_total": run.sizes["ram"] + ir.state_bytes + run.stack_bytes,
                "bit_exact": True,
            })
            print(_line(rows[-1]), flush=True)
    return rows


HEAD = (f"{'model':<24} {'profile':<7} {'cpu':<13} {'opt':<3} {'kernels':<10} {'flash':>6} "
        f"{'code':>5} {'RAM':>5} {'stack':>5} {'instr/step':>10} {'instr/MAC':>9} "
        f"{'matvec/MAC':>10} {'other/unit':>10} {'cycles/step':>11} {'cyc/MAC':>7} {'us/step':>8}")


def _line(r: dict) -> str:
    mv, ou = r["matvec_instructions_per_mac"], r["other_instructions_per_unit"]
    return (f"{r['model']:<24} {r['profile']:<7} {r['cpu']:<13} {r['opt']:<3} {r['kernels']:<10} "
            f"{r['flash']:>6} {r['code']:>5} {r['ram_total']:>5} {r['stack']:>5} "
            f"{r['instructions_per_step']:>10.1f} {r['instructions_per_mac']:>9.3f} "
            f"{'-' if mv is None else f'{mv:.3f}':>10} {'-' if ou is None else f'{ou:.1f}':>10} "
            f"{r['cycles_per_step']:>11.0f} {r['cycles_per_mac']:>7.2f} "
            f"{r['microseconds_per_step']:>8.1f}")


def goals_table(rows: list[dict]) -> tuple[list[str], list[dict]]:
    lines = [f"{'goal (tflm, -O2, random 6-N-4)':<34} {'instr/MAC':>9} {'goal':>6}  status"]
    out = []
    for (cpu, units), goal in GOALS.items():
        match = [r for r in rows if r["model"].startswith("random") and r["cpu"] == cpu
                 and r["units"] == [units] and r["profile"] == "tflm" and r["opt"] == "O2"
                 and r["kernels"] == _kernels(cpu, False)]
        if not match:
            continue
        value = match[0]["instructions_per_mac"]
        met = value <= goal
        out.append({"cpu": cpu, "units": units, "instructions_per_mac": value, "goal": goal,
                    "met": met})
        lines.append(f"{TARGETS[cpu].title + f', {units} units':<34} {value:>9.3f} "
                     f"{'≤' + format(goal, 'g'):>6}  {'met' if met else 'NOT met'}")
    return lines, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="a quantized BasicMotions run")
    parser.add_argument("--no-real", action="store_true", help="skip the real-model rows")
    parser.add_argument("--steps", type=int, default=4, help="steps per random model")
    parser.add_argument("--clock", default=None,
                        help="core clock for us/step (default: each core's, 64MHz; the Uno "
                             "16MHz)")
    parser.add_argument("--cpu", action="append", choices=tuple(TARGETS), help="repeat")
    parser.add_argument("--units", action="append", type=int, help="layer sizes (repeat)")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"results file ({RESULTS})")
    args = parser.parse_args()
    clock_hz = None if args.clock is None else parse_clock(args.clock)
    cpus = tuple(args.cpu or TARGETS)
    toolchains = {c: find_toolchain(c).version() for c in cpus}
    builds = [(c, "O2", False) for c in cpus] + [b for b in EXTRA_BUILDS if b[0] in cpus]
    sizes = tuple((u,) for u in args.units) if args.units else SIZES
    start = time.process_time(), time.perf_counter()
    print(f"clock {format_clock(clock_hz) if clock_hz else 'of each core (64 MHz; Uno 16 MHz)'}"
          "; instructions exact, cycles from each core's cycle model (an estimate), exact on "
          "the Uno (simavr)")
    print(HEAD)
    print("-" * len(HEAD))
    rows: list[dict] = []
    for units in sizes:
        ir = random_model(INPUT_DIM, units, CLASSES, seed=units[0])
        x_q = np.random.default_rng(units[0]).integers(-128, 128, (1, args.steps, INPUT_DIM),
                                                       dtype=np.int8)
        shape = "-".join(map(str, (INPUT_DIM, *units, CLASSES)))
        rows += _rows(f"random {shape}", ir, x_q, builds, clock_hz)
    described = None
    if not args.no_real:
        with tempfile.TemporaryDirectory() as scratch:
            run = _real_run(args.run, Path(scratch))
            ir = read_ir(run / "model_int8.tflite")
            x_q, _, described = held_out_inputs(run, ir, limit=2)
            shape = "-".join(map(str, (ir.input_dim, *ir.layer_units, ir.output_dim)))
            rows += _rows(f"BasicMotions {shape}", ir, x_q, builds, clock_hz)
    lines, goals = goals_table(rows)
    print()
    print("\n".join(lines))
    cpu_s, wall_s = time.process_time() - start[0], time.perf_counter() - start[1]
    print(f"(this process: {cpu_s:.0f} s CPU, {wall_s:.0f} s wall; emulators and compilers "
          "run in child processes)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(dumps_json({
        "toolchain": toolchains, "clock_hz": clock_hz,
        "targets": {c: TARGETS[c].to_dict() for c in cpus},
        "counts": "executed instructions (exact, deterministic: unicorn's block hook, QEMU's "
                  "-singlestep exec trace for the Cortex-M55, simavr for the ATmega328P); "
                  "cycles: each core's cycle model, counted exactly by simavr on the Uno",
        "real_data": described, "rows": rows, "goals": goals}), encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
