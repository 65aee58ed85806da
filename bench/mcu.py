"""Cortex-M cost of the generated step: flash, RAM, stack, exact instructions per step and MAC.

Models: random-weight IRs of 32, 64 and 128 units and two stacked layers of 128,
BasicMotions-shaped (6 inputs, 4 classes), and the real BasicMotions model of a run
directory (``--run``; without it a 16-unit run is trained and quantized first,
~1 minute). Each model is built for
Cortex-M0+, M4 and M7 at -O2 and -Os, both arithmetic profiles (plus the M4 with the
portable C kernels), and stepped in unicorn; every step is checked bit for bit
against the simulator before its count is used. Instruction counts are executed
Thumb instructions (not cycles), head included on every step.

Usage: .venv/bin/python bench/mcu.py [--run RUN_DIR] [--steps 4]
Writes bench/results/mcu.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from elman.firmware_codegen.arm.api import held_out_inputs
from elman.firmware_codegen.arm.emulate import run_emulated
from elman.firmware_codegen.arm.toolchain import find_toolchain
from elman.layers.random_model import random_model
from elman.quantize.reader import read_ir
from elman.runtime.simulator import Simulator

from elman.files import dumps_json

RESULTS = Path(__file__).parent / "results" / "mcu.json"
SIZES = ((32,), (64,), (128,), (128, 128))
INPUT_DIM, CLASSES = 6, 4
BUILDS = [(cpu, opt, False) for cpu in ("cortex-m0plus", "cortex-m4", "cortex-m7")
          for opt in ("O2", "Os")] + [("cortex-m4", "O2", True)]


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


def _rows(name: str, ir, x_q: np.ndarray) -> list[dict]:
    rows = []
    for profile in ("tflm", "tflite"):
        expected = Simulator(ir, profile).run(x_q)
        for cpu, opt, portable in BUILDS:
            run = run_emulated(ir, x_q, profile=profile, cpu=cpu, opt=opt, portable=portable)
            np.testing.assert_array_equal(run.outputs.h, expected.h)
            np.testing.assert_array_equal(run.outputs.y, expected.y)
            other = None if run.matvec_instructions_per_step is None else (
                (run.instructions_per_step - run.matvec_instructions_per_step) / ir.state_bytes)
            rows.append({
                "model": name, "units": list(ir.layer_units), "macs_per_step": ir.macs_per_step,
                "profile": profile, "cpu": cpu, "opt": opt,
                "kernels": "portable C" if portable or cpu == "cortex-m0plus" else "DSP",
                "flash": run.sizes["flash"], "code": run.sizes["code"],
                "weights_tables": run.sizes["weights_tables"], "ram": run.sizes["ram"],
                "stack": run.stack_bytes, "steps": int(x_q.shape[0] * x_q.shape[1]),
                "instructions_per_step": round(run.instructions_per_step, 1),
                "instructions_per_mac": round(run.instructions_per_mac, 3),
                "matvec_instructions_per_mac": None if run.matvec_instructions_per_mac is None
                else round(run.matvec_instructions_per_mac, 3),
                "other_instructions_per_unit": None if other is None else round(other, 1),
                "bit_exact": True,
            })
            print(_line(rows[-1]), flush=True)
    return rows


HEAD = (f"{'model':<26} {'profile':<7} {'cpu':<13} {'opt':<3} {'kernels':<10} {'flash':>6} "
        f"{'code':>5} {'RAM':>4} {'stack':>5} {'instr/step':>10} {'instr/MAC':>9} "
        f"{'matvec/MAC':>10} {'other/unit':>10}")


def _line(r: dict) -> str:
    mv, ou = r["matvec_instructions_per_mac"], r["other_instructions_per_unit"]
    return (f"{r['model']:<26} {r['profile']:<7} {r['cpu']:<13} {r['opt']:<3} {r['kernels']:<10} "
            f"{r['flash']:>6} {r['code']:>5} {r['ram']:>4} {r['stack']:>5} "
            f"{r['instructions_per_step']:>10.1f} {r['instructions_per_mac']:>9.3f} "
            f"{'-' if mv is None else f'{mv:.3f}':>10} {'-' if ou is None else f'{ou:.1f}':>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="a quantized BasicMotions run")
    parser.add_argument("--steps", type=int, default=4, help="steps per random model")
    args = parser.parse_args()
    toolchain = find_toolchain()
    print(HEAD)
    print("-" * len(HEAD))
    rows: list[dict] = []
    for units in SIZES:
        ir = random_model(INPUT_DIM, units, CLASSES, seed=units[0])
        x_q = np.random.default_rng(units[0]).integers(-128, 128, (1, args.steps, INPUT_DIM),
                                                       dtype=np.int8)
        shape = "-".join(map(str, (INPUT_DIM, *units, CLASSES)))
        rows += _rows(f"random {shape}", ir, x_q)
    with tempfile.TemporaryDirectory() as scratch:
        run = _real_run(args.run, Path(scratch))
        ir = read_ir(run / "model_int8.tflite")
        x_q, _, described = held_out_inputs(run, ir, limit=2)
        shape = "-".join(map(str, (ir.input_dim, *ir.layer_units, ir.output_dim)))
        rows += _rows(f"BasicMotions {shape}", ir, x_q)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(dumps_json({
        "toolchain": toolchain.version(),
        "counts": "executed Thumb instructions in unicorn (exact, deterministic), not cycles",
        "real_data": described, "rows": rows}), encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
