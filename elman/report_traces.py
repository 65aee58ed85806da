"""Float vs int8 hidden state along held-out data, for ``report.html``.

The float states are the Keras model's recurrence recomputed from its weights
(``elman.quantize.float_model``, read by ``elman.quantize.keras_model``); the int8 states come from
the bit-exact simulator (profile ``tflm``) running the ``.tflite`` step model,
dequantized with the state's (1/128, 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from elman import rundir

TEXT_TRACE_STEPS = 200


@dataclass(frozen=True)
class HiddenTraces:
    """Float and dequantized int8 hidden states of one sequence, and of one long stream."""

    float_h: np.ndarray  # float (T, H)
    int8_h: np.ndarray  # float (T, H)
    description: str  # which sequence
    stream_error: np.ndarray | None = None  # (S,) mean |float - int8| over units, per step
    stream_description: str = ""

    def units_to_show(self, count: int = 6) -> list[int]:
        """The units that move the most along the sequence (the most telling to look at)."""
        spread = self.float_h.std(axis=0)
        return sorted(int(u) for u in np.argsort(-spread, kind="stable")[:count])


def hidden_traces(run_dir: Path | str) -> HiddenTraces:
    """Traces for the first held-out sequence (text: the first validation characters).

    Classifiers also get a long stream: every test sequence back to back, the
    state never reset, as a sensor node that runs continuously would see them.
    """
    from elman.data.held_out import load_held_out
    from elman.quantize.keras_model import read_keras_file
    from elman.quantize.reader import read_ir
    from elman.runtime.simulator import Simulator

    run_dir = Path(run_dir)
    ir = read_ir(rundir.require(run_dir, rundir.MODEL_TFLITE))
    model = read_keras_file(rundir.require(run_dir, rundir.MODEL_KERAS), ir.task).model
    sim = Simulator(ir, "tflm")
    if ir.task == "language_model":
        ids = load_held_out(run_dir, limit=TEXT_TRACE_STEPS).inputs
        int8 = sim.run_tokens(ids).h
        flt = model.run(model.embed(ids), dtype=np.float64).h
        return HiddenTraces(flt[0], ir.state_quant.dequantize(int8[0]),
                            f"the first {ids.shape[1]} validation characters")
    held = load_held_out(run_dir)
    x = np.asarray(held.inputs, dtype=np.float64)
    first = x[:1, : held.lengths[0]]
    flt = model.run(first, dtype=np.float64).h
    int8 = sim.run(ir.input_quant.quantize(first)).h
    if held.targets.ndim == 2:  # one label per step
        changes = int((held.targets[0, 1:held.lengths[0]]
                       != held.targets[0, :held.lengths[0] - 1]).sum())
        what = f"test stream 0 ({first.shape[1]} steps, {changes} changes of class)"
    else:
        what = (f"test sequence 0 (class {held.names[int(held.targets[0])]}, "
                f"{first.shape[1]} steps)")
    # the real samples of every sequence, end to end (no padding)
    stream = np.concatenate([s[:n] for s, n in zip(x, held.lengths, strict=True)])[None]
    stream_f = model.run(stream, dtype=np.float64).h
    stream_q = ir.state_quant.dequantize(sim.run(ir.input_quant.quantize(stream)).h)
    return HiddenTraces(
        flt[0], ir.state_quant.dequantize(int8[0]),
        what,
        np.abs(stream_f[0] - stream_q[0]).mean(axis=1),
        f"all {x.shape[0]} test sequences back to back, state never reset "
        f"({stream.shape[1]:,} steps)")
