"""Per-step latency on this host, batch 1, same model: generated C vs interpreters vs simulator.

For each model (random-weight int8 step models converted by the real TF
converter, BasicMotions-shaped: 6 inputs, 4 classes; plus the model of each
run directory given with --run), one stream of T int8 inputs is stepped by:

- the generated C, compiled with ``cc -O2`` (both profiles; and -O3, tflm), timed inside the
  harness (inputs preloaded, no I/O), median of several repeats;
- LiteRT, one ``invoke`` per step from Python (``BUILTIN_REF`` kernels, and the
  default optimized kernels), ``set_tensor``/``get_tensor`` included;
- the TFLite Micro Python interpreter, the same loop;
- elman's numpy simulator, ``Simulator.step`` at batch 1.

Every implementation's outputs are checked against the simulator first. Times
are CPU time of this process (the C harness: CLOCK_PROCESS_CPUTIME_ID), the
best of 7 rounds, so that other load on a shared machine distorts them least;
the load average is recorded with the results.
Usage: .venv/bin/python bench/host_step.py [--run RUN_DIR ...] [--steps 200]
Writes bench/results/host_step.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from elman.firmware_codegen.host import bench_host_c, compiler, run_host_c
from elman.quantize.reader import read_ir
from elman.runtime.interpreters import litert_step, tflm_step
from elman.runtime.simulator import Simulator

from elman.files import dumps_json

RESULTS = Path(__file__).parent / "results" / "host_step.json"
SIZES = (16, 64, 128, 256)
INPUT_DIM, CLASSES = 6, 4


def _best_seconds_per_step(fn, steps: int, rounds: int = 7) -> float:
    """CPU seconds per step, the fastest of several rounds (robust on a shared machine)."""
    times = []
    for _ in range(rounds):
        start = time.process_time()
        fn()
        times.append((time.process_time() - start) / steps)
    return min(times)


def _stream(step, ir, x_q) -> np.ndarray:
    """Drive ``step(x, [h_l]) -> ([h_l'], y)`` over one stream; returns the states (T, S)."""
    h = [np.zeros((1, units), dtype=np.int8) for units in ir.layer_units]
    hs = np.empty((x_q.shape[1], ir.state_bytes), dtype=np.int8)
    for t in range(x_q.shape[1]):
        h, _ = step(x_q[0, t][None, :], h)
        hs[t] = np.concatenate(h, axis=1)[0]
    return hs


def _litert_default_step(model: bytes, ir):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model)
    interp.allocate_tensors()
    ins, outs = interp.get_input_details(), interp.get_output_details()
    sig = ir.signature

    def step(x, h):
        interp.set_tensor(ins[sig.x_input]["index"], x)
        for i, value in zip(sig.h_inputs, h, strict=True):
            interp.set_tensor(ins[i]["index"], value)
        interp.invoke()
        y = None if sig.y_output is None else interp.get_tensor(outs[sig.y_output]["index"])
        return [interp.get_tensor(outs[i]["index"]) for i in sig.h_outputs], y

    return step


def bench_model(name: str, model: bytes, steps: int) -> dict:
    ir = read_ir(model)
    x_q = np.random.default_rng(0).integers(-128, 128, size=(1, steps, ir.input_dim),
                                            dtype=np.int8)
    row: dict = {"model": name, "input_dim": ir.input_dim, "units": list(ir.layer_units),
                 "output_dim": ir.output_dim, "macs_per_step": ir.macs_per_step,
                 "steps": steps}
    reference = {p: Simulator(ir, p).run(x_q) for p in ("tflm", "tflite")}
    for profile in ("tflm", "tflite"):
        c = run_host_c(ir, x_q, profile=profile)
        assert np.array_equal(c.h, reference[profile].h), f"C {profile} is not bit-exact"
        per_run = max(1, int(2e8 / max(1, ir.macs_per_step) / steps))  # ~0.1-0.5 s per timing
        ns = [bench_host_c(ir, x_q, per_run, profile=profile) for _ in range(7)]
        row[f"c_O2_{profile}_ns"] = round(min(ns), 1)
        if profile == "tflm":
            ns = [bench_host_c(ir, x_q, per_run, profile=profile, opt="-O3") for _ in range(7)]
            row["c_O3_tflm_ns"] = round(min(ns), 1)

    sim = Simulator(ir, "tflm")

    def simulate():
        sim.reset(1)
        for t in range(steps):
            sim.step(x_q[:, t])

    row["simulator_us"] = round(_best_seconds_per_step(simulate, steps) * 1e6, 2)
    for key, make, profile in (("litert_ref_us", litert_step, "tflite"),
                               ("litert_default_us", _litert_default_step, None),
                               ("tflm_us", tflm_step, "tflm")):
        step = make(model, ir)
        hs = _stream(step, ir, x_q)
        if profile is not None:
            assert np.array_equal(hs, reference[profile].h[0]), f"{key} is not bit-exact"
        row[key] = round(_best_seconds_per_step(lambda s=step: _stream(s, ir, x_q), steps)
                         * 1e6, 2)
    row["speedup_c_vs_litert_ref"] = round(row["litert_ref_us"] * 1e3 / row["c_O2_tflite_ns"], 2)
    return row


def _models(args) -> list[tuple[str, bytes]]:
    from elman.quantize.testing import random_step_tflite

    models = [(f"random {INPUT_DIM}-{u}-{CLASSES}",
               random_step_tflite(INPUT_DIM, u, CLASSES, seed=0)) for u in SIZES]
    for run in args.run or []:
        models.append((Path(run).name, (Path(run) / "model_int8.tflite").read_bytes()))
    return models


def _cc_version() -> str:
    out = subprocess.run([compiler(), "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, action="append",
                        help="also a run directory's model_int8.tflite (repeatable)")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    rows = [bench_model(name, model, args.steps) for name, model in _models(args)]
    head = ("model", "MACs", "C tflm ns", "C tflite ns", "C -O3 ns", "sim us", "LiteRT ref us",
            "LiteRT dflt us", "TFLM us", "C vs LiteRT ref")
    table = [(r["model"], str(r["macs_per_step"]), f"{r['c_O2_tflm_ns']:.0f}",
              f"{r['c_O2_tflite_ns']:.0f}", f"{r['c_O3_tflm_ns']:.0f}", f"{r['simulator_us']:.1f}",
              f"{r['litert_ref_us']:.1f}", f"{r['litert_default_us']:.1f}",
              f"{r['tflm_us']:.1f}", f"{r['speedup_c_vs_litert_ref']:.1f}x") for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(head)]
    print("per-step CPU time, batch 1 (C: ns; others: us)")
    print("  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True)))
    for t in table:
        print("  ".join(c.rjust(w) for c, w in zip(t, widths, strict=True)))
    machine = {"cpu": _cpu(), "cores": os.cpu_count(), "python": sys.version.split()[0],
               "cc": _cc_version(), "load_average_1min": round(os.getloadavg()[0], 2)}
    result = {"benchmark": "host_step", "machine": machine, "rows": rows}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(dumps_json(result))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
