"""Float vs int8 hidden state along one held-out sequence, for ``report.html``.

The float trace is the Keras model's own SimpleRNN recurrence
(``h_t = tanh(x_t W + h_{t-1} U + b)``, with the layer's weights, in float32);
the int8 trace is the bit-exact simulator (profile ``tflm``) running the
``.tflite`` step model, dequantized with the state's (1/128, 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from elman import rundir

TEXT_TRACE_STEPS = 200


@dataclass(frozen=True)
class HiddenTraces:
    float_h: np.ndarray  # float (T, H)
    int8_h: np.ndarray  # float (T, H), dequantized int8 states
    description: str  # which sequence

    def units_to_show(self, count: int = 6) -> list[int]:
        """The units that move the most along the sequence (most informative to look at)."""
        spread = self.float_h.std(axis=0)
        return sorted(int(u) for u in np.argsort(-spread, kind="stable")[:count])


def float_hidden_states(model_path: Path, inputs: np.ndarray, tokens: bool) -> np.ndarray:
    """The float SimpleRNN states of one sequence: inputs (T, C) floats, or (T,) token ids."""
    import keras

    model = keras.saving.load_model(model_path, compile=False)
    kernel, recurrent, bias = (np.asarray(w, np.float32)
                               for w in model.get_layer("rnn").get_weights())
    if tokens:
        table = np.asarray(model.get_layer("embedding").get_weights()[0], np.float32)
        inputs = table[np.asarray(inputs, dtype=np.int64)]
    inputs = np.asarray(inputs, np.float32)
    h = np.zeros(recurrent.shape[0], np.float32)
    out = np.empty((inputs.shape[0], recurrent.shape[0]), np.float32)
    for t, x in enumerate(inputs):
        h = np.tanh(x @ kernel + h @ recurrent + bias)
        out[t] = h
    return out


def hidden_traces(run_dir: Path) -> HiddenTraces:
    """Both traces for the first held-out sequence (text: the first validation characters)."""
    from elman.quantize.reader import read_ir
    from elman.runtime.simulator import Simulator
    from elman.train.data import load_run_data

    run_dir = Path(run_dir)
    ir = read_ir(rundir.require(run_dir, rundir.MODEL_TFLITE))
    data = load_run_data(run_dir)
    sim = Simulator(ir, "tflm")
    if data.task == "language_model":
        ids = np.asarray(data.val_ids[:TEXT_TRACE_STEPS], dtype=np.int64)
        int8 = sim.run_tokens(ids[None, :]).h[0]
        flt = float_hidden_states(run_dir / rundir.MODEL_KERAS, ids, tokens=True)
        what = f"the first {len(ids)} validation characters"
    else:
        x = np.asarray(data.x_test[0], dtype=np.float32)
        int8 = sim.run(ir.input_quant.quantize(x)[None, :, :]).h[0]
        flt = float_hidden_states(run_dir / rundir.MODEL_KERAS, x, tokens=False)
        label = data.classes[int(data.y_test[0])] if len(data.classes) else data.y_test[0]
        what = f"test sequence 0 (class {label}, {x.shape[0]} steps)"
    return HiddenTraces(flt, ir.state_quant.dequantize(int8), what)
