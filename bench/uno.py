"""The Arduino Uno (ATmega328P, 16 MHz, 32 KB flash, 2 KB RAM): flash, RAM and exact cycles per
step of the generated C, built with avr-gcc and run in simavr.

Models: random-weight BasicMotions-shaped IRs (6 inputs, 4 classes) of 16, 32 and 64 units
and the real BasicMotions model of a run directory (``--run``, e.g. runs/demo: the 64-unit
demo model). Both arithmetic profiles, -Os and -O2. Every step is checked bit for bit against
the simulator before its cycles are used; the head runs on every step. RAM is the caller's
state (one byte per unit) plus the deepest stack of a step (painted); the model itself has
no static RAM (weights and tables stay in flash, PROGMEM).

Usage: .venv/bin/python bench/uno.py [--run RUN_DIR] [--steps 8]
Writes bench/results/uno.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from elman.firmware_codegen.avr import CLOCK_HZ, run_avr
from elman.layers.random_model import random_model
from elman.quantize.reader import read_ir
from elman.runtime.simulator import Simulator

from elman.files import dumps_json

RESULTS = Path(__file__).parent / "results" / "uno.json"
SIZES = (16, 32, 64)
INPUT_DIM, CLASSES = 6, 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a run directory (its real model and data)")
    parser.add_argument("--steps", type=int, default=8, help="steps per model (default 8)")
    args = parser.parse_args()
    models = [(f"random 6-{u}-4", random_model(INPUT_DIM, u, CLASSES, seed=u), None)
              for u in SIZES]
    if args.run is not None:
        from elman.verify import load_verify_inputs

        ir = read_ir(args.run / "model_int8.tflite")
        x = load_verify_inputs(args.run, ir).x_q[:1, : args.steps]
        models.append((f"{args.run} (real, {ir.layer_units[0]} units)", ir, x))
    rows = []
    header = (f"{'model':<34} {'profile':<7} {'opt':<3} {'flash':>6} {'state':>5} {'stack':>5} "
              f"{'RAM':>5} {'cycles/step':>11} {'ms/step':>7} {'cycles/MAC':>10}")
    print(header)
    for name, ir, x in models:
        if x is None:
            x = np.random.default_rng(0).integers(-128, 128, (1, args.steps, ir.input_dim),
                                                  dtype=np.int8)
        for profile in ("tflm", "tflite"):
            sim = Simulator(ir, profile).run(x)
            for opt in ("Os", "O2"):
                run = run_avr(ir, x, profile=profile, opt=opt)
                np.testing.assert_array_equal(run.outputs.h, sim.h)
                np.testing.assert_array_equal(run.outputs.y, sim.y)
                row = {"model": name, "profile": profile, "opt": opt,
                       "flash_bytes": run.flash_bytes, "state_bytes": ir.state_bytes,
                       "stack_bytes": run.stack_bytes, "static_ram_bytes": run.static_ram_bytes,
                       "ram_bytes": ir.state_bytes + run.stack_bytes + run.static_ram_bytes,
                       "cycles_per_step": run.cycles_per_step,
                       "max_cycles_per_step": run.max_cycles_per_step,
                       "ms_per_step": run.cycles_per_step / CLOCK_HZ * 1e3,
                       "macs_per_step": ir.macs_per_step,
                       "cycles_per_mac": run.cycles_per_step / ir.macs_per_step,
                       "steps": int(x.shape[1]), "bit_exact": True}
                rows.append(row)
                print(f"{name:<34} {profile:<7} {opt:<3} {row['flash_bytes']:>6} "
                      f"{row['state_bytes']:>5} {row['stack_bytes']:>5} {row['ram_bytes']:>5} "
                      f"{row['cycles_per_step']:>11.0f} {row['ms_per_step']:>7.2f} "
                      f"{row['cycles_per_mac']:>10.1f}", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(dumps_json({"mcu": "atmega328p", "clock_hz": CLOCK_HZ,
                                   "emulator": "simavr (exact cycles)", "rows": rows}))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
