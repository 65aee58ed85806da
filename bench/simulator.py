"""Throughput of the simulator against the interpreters' per-step invoke loops.

sequences x steps per second, for random-weight int8 step models (real TF
conversion): 6 inputs / 32 units / 4 classes, the demo's BasicMotions shape
(6 / 64 / 4), 16 / 64 / 8, 32 / 128 / 10, and the text task's default
(16 / 384 / 96):

- ``Simulator(ir, profile, engine).run`` on a batch of 1 and of 256 sequences,
  for both engines: ``numba`` (compiled, the default) and ``numpy`` (reference);
- LiteRT ``BUILTIN_REF``: one ``invoke`` per step of one sequence, from Python
  (``set_tensor`` / ``get_tensor`` included), i.e. ``run_litert``;
- the TFLite Micro Python interpreter, the same loop (``run_tflm``).

Every implementation's outputs are checked bit for bit against the simulator of
its profile before timing, and the two engines against each other at batch 256.
Each time is the best of several rounds (the machine may be shared); the ratio
column uses CPU time (everything timed runs on one thread); the load average
is recorded.
Usage: .venv/bin/python bench/simulator.py [--steps 100] [--rounds 5] [--run runs/demo]
Writes bench/results/simulator.json.
"""

from __future__ import annotations

import os

# One BLAS thread: the per-step products are small, and threads only fight on a
# shared machine. Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform
import time
from pathlib import Path

import numpy as np  # noqa: E402
from elman.quantize.reader import read_ir  # noqa: E402
from elman.quantize.testing import random_step_tflite  # noqa: E402
from elman.runtime.interpreters import run_litert, run_tflm  # noqa: E402
from elman.runtime.simulator import Simulator  # noqa: E402

MODELS = {"6x32x4": (6, 32, 4), "BM-shaped 6x64x4": (6, 64, 4),
          "16x64x8": (16, 64, 8), "32x128x10": (32, 128, 10),
          "text 16x384x96": (16, 384, 96)}
ENGINES = ("numba", "numpy")
RESULTS = Path(__file__).parent / "results" / "simulator.json"


def best_time(fn, rounds: int) -> tuple[float, float]:
    """Best wall-clock and best CPU (process) time of ``rounds`` calls, in seconds.

    Everything timed runs on one thread, so on an idle machine the two agree; on a
    shared one the CPU time is the fairer measure of the work done.
    """
    wall = cpu = float("inf")
    for _ in range(rounds):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - w)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu


def random_model(dims: tuple[int, int, int], steps: int) -> tuple[bytes, np.ndarray]:
    """A random-weight step model (real TF conversion) and 256 random int8 sequences."""
    model = random_step_tflite(*dims, seed=0)
    ir = read_ir(model)
    rng = np.random.default_rng(0)
    return model, ir.input_quant.quantize(rng.uniform(-1, 1, (256, steps, ir.input_dim)))


def run_model(run_dir: Path) -> tuple[bytes, np.ndarray]:
    """A trained run's int8 model and its held-out data (``elman verify``'s inputs),
    its sequences repeated up to 256."""
    from elman.verify import load_verify_inputs

    model = (run_dir / "model_int8.tflite").read_bytes()
    x_q = load_verify_inputs(run_dir, read_ir(model)).x_q
    return model, np.resize(x_q, (256, *x_q.shape[1:]))


def bench_model(name: str, model: bytes, x256: np.ndarray, rounds: int) -> list[dict]:
    ir = read_ir(model)
    steps = x256.shape[1]
    x1 = x256[:1]
    sims = {(p, e): Simulator(ir, p, e) for p in ("tflm", "tflite") for e in ENGINES}
    for profile, run in (("tflite", run_litert), ("tflm", run_tflm)):
        ref = run(model, ir, x1)
        for engine in ENGINES:
            sim = sims[profile, engine].run(x1)
            np.testing.assert_array_equal(ref.h, sim.h)
            np.testing.assert_array_equal(ref.y, sim.y)
        compiled, reference = (sims[profile, e].run(x256) for e in ENGINES)
        np.testing.assert_array_equal(compiled.h, reference.h)
        np.testing.assert_array_equal(compiled.y, reference.y)
    rows = []

    def add(impl: str, batch: int, seconds: tuple[float, float]) -> None:
        wall, cpu = seconds
        rows.append({"model": name, "implementation": impl, "batch": batch, "steps": steps,
                     "wall_s": wall, "cpu_s": cpu,
                     "sequence_steps_per_s": batch * steps / wall,
                     "sequence_steps_per_cpu_s": batch * steps / cpu})

    add("LiteRT BUILTIN_REF invoke loop", 1,
        best_time(lambda: run_litert(model, ir, x1), rounds))
    add("TFLite Micro invoke loop", 1, best_time(lambda: run_tflm(model, ir, x1), rounds))
    for (profile, engine), sim in sims.items():
        add(f"simulator {engine} ({profile})", 1, best_time(lambda s=sim: s.run(x1), rounds))
        add(f"simulator {engine} ({profile})", 256,
            best_time(lambda s=sim: s.run(x256), rounds))
    litert, litert_cpu = rows[0]["sequence_steps_per_s"], rows[0]["sequence_steps_per_cpu_s"]
    for r in rows:
        r["vs_litert_loop"] = r["sequence_steps_per_s"] / litert
        r["vs_litert_loop_cpu"] = r["sequence_steps_per_cpu_s"] / litert_cpu
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--run", type=Path, action="append", default=[],
                        help="also a trained run directory (model_int8.tflite and its "
                             "held-out data), e.g. runs/demo after `make demo`; repeatable")
    args = parser.parse_args()
    rows = []
    for run_dir in args.run:
        rows += bench_model(f"{run_dir.name} (trained)", *run_model(run_dir), args.rounds)
    for name, dims in MODELS.items():
        rows += bench_model(name, *random_model(dims, args.steps), args.rounds)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'model':<20} {'implementation':<32} {'batch':>5} {'seq*steps/s':>12} "
          f"{'x LiteRT':>8} {'seq*steps/cpu-s':>15} {'x LiteRT':>8}")
    for r in rows:
        print(f"{r['model']:<20} {r['implementation']:<32} {r['batch']:>5} "
              f"{r['sequence_steps_per_s']:>12,.0f} {r['vs_litert_loop']:>8.1f} "
              f"{r['sequence_steps_per_cpu_s']:>15,.0f} {r['vs_litert_loop_cpu']:>8.1f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "simulator", "steps": args.steps, "rounds": args.rounds,
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                          "load_average": list(os.getloadavg())},
              "rows": rows}
    RESULTS.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
