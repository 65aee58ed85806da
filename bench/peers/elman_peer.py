"""elman itself, in the same harness: its generated C (profile ``tflm``) on the run's model.

Two ways of calling the step, as a firmware would:
- the head on every step (``elman_step(&state, x, y)`` each time), what TFLM's step
  model computes: ``elman.firmware_codegen.arm.emulate.run_emulated``;
- the head on the last step only (``y`` NULL until then), what NNoM and keras2c's
  sequence API compute: the same image (``build_model_image``), stepped here.
Both are compared bit for bit with elman's simulator (every ``h``; every ``y``, or the
last one).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from elman.firmware_codegen.arm.emulate import build_model_image, run_emulated
from elman.firmware_codegen.arm.machine import Machine
from elman.runtime.simulator import Simulator
from reference import int8_agreement

PREFIX = "elman"


def _row(ir, variant: str, head: str, cpu: str, opt: str, sizes: dict[str, int], stack: int,
         instructions: float, macs: float, check: dict[str, Any]) -> dict[str, Any]:
    return {
        "peer": "elman", "variant": variant, "cpu": cpu, "opt": opt, "head": head,
        "flash": sizes["flash"],
        "flash_split": {"step code": sizes["code"], "weights and tables":
                        sizes["weights_tables"] + sizes["data"] + sizes["other_flash"]},
        "ram": sizes["ram"] + ir.state_bytes + stack,
        "ram_split": {"static": sizes["ram"], "stack": stack, "state": ir.state_bytes},
        "instructions_per_step": instructions, "macs_per_step": macs, "check": check,
    }


def head_every_step(model, cpu: str, opt: str) -> dict[str, Any]:
    ir = model.ir
    want = Simulator(ir, "tflm").run(model.x_q)
    run = run_emulated(ir, model.x_q, profile="tflm", cpu=cpu, opt=opt, prefix=PREFIX)
    check = int8_agreement("elman simulator (tflm)",
                           np.concatenate([run.outputs.h, run.outputs.y], -1),
                           np.concatenate([want.h, want.y], -1))
    row = _row(ir, "tflm profile", "every step", cpu, opt, run.sizes, run.stack_bytes,
               run.instructions_per_step, ir.macs_per_step, check)
    row["instructions_by_function"] = {k: round(v, 1) for k, v in run.by_function.items()}
    return row


def head_last_step(model, cpu: str, opt: str, macs: float) -> dict[str, Any]:
    ir = model.ir
    want = Simulator(ir, "tflm").run(model.x_q)
    with tempfile.TemporaryDirectory(prefix="elman-peers-") as tmp:
        image = build_model_image(ir, Path(tmp), profile="tflm", cpu=cpu, opt=opt,
                                  prefix=PREFIX)
        m = Machine(image)
        state, xa, ya = (m.address(f"armharness_{n}") for n in ("state", "x", "y"))
        n, t = model.x_q.shape[:2]
        h = np.zeros((n, t, ir.state_bytes), np.int8)
        y = np.zeros((n, ir.output_dim), np.int8)
        total = 0
        for b in range(n):
            m.call(f"{PREFIX}_reset", state)
            for s in range(t):
                m.write(xa, model.x_q[b, s].astype(np.int8).tobytes())
                total += m.call(f"{PREFIX}_step", state, xa, ya if s == t - 1 else 0
                                ).instructions
                h[b, s] = np.frombuffer(m.read(state, ir.state_bytes), np.int8)
            y[b] = np.frombuffer(m.read(ya, ir.output_dim), np.int8)
        stack = m.stack_high_water()
    check = int8_agreement("elman simulator (tflm)",
                           np.concatenate([h.reshape(n, -1), y], -1),
                           np.concatenate([want.h.reshape(n, -1), want.y[:, -1]], -1))
    return _row(ir, "tflm profile", "last step", cpu, opt, image.sizes.to_dict(), stack,
                total / (n * t), macs, check)
