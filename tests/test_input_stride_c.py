"""A model read at a stride (``--stride k``): the generated header says how the device makes
one step of every k raw samples (``<P>_INPUT_STRIDE``, ``<P>_INPUT_STRIDE_MEAN``), and
``<p>_classify``, given the raw samples, forms the steps as training did and answers what the
simulator answers on the strided data. The stride travels data spec -> ``.tflite`` metadata
-> IR -> C (tests/test_data_stride.py runs the whole chain)."""

import dataclasses

import numpy as np
import pytest
from elman.data.sequences import strided, with_deltas
from elman.firmware_codegen.generate import generate_c
from elman.firmware_codegen.host import compile_program, run_program
from elman.layers.random_model import random_model
from elman.quantize.describe import describe_ir
from elman.quantize.ir import QuantizedModel
from elman.runtime.simulator import Simulator

# Reads raw windows from stdin: a sample count, then that many samples of INPUT_DIM floats;
# prints classify's answer for each.
MAIN = r"""
#include <stdio.h>
#include "s_model.h"

static float raw[4096 * S_RAW_CHANNELS];

int main(void)
{
    unsigned long samples, i;
    printf("%d %d %d %d\n", S_INPUT_STRIDE, S_INPUT_STRIDE_MEAN, S_INPUT_STRIDE_STACK,
           S_RAW_CHANNELS);
    while (scanf("%lu", &samples) == 1) {
        for (i = 0; i < samples * S_RAW_CHANNELS; ++i) {
            if (scanf("%f", &raw[i]) != 1) {
                return 2;
            }
        }
        printf("%d\n", s_classify(raw, samples, NULL));
    }
    return 0;
}
"""


def _model(stride: int, mode: str, deltas: bool = False) -> QuantizedModel:
    """3 raw channels (a stacked step: 3 x stride inputs; with deltas twice as many)."""
    per_sample = 6 if deltas else 3
    ir = random_model(per_sample * stride if mode == "stack" else per_sample, 12, 4, seed=8,
                      window_steps=10)
    return dataclasses.replace(ir, input_stride=stride, stride_mode=mode, input_deltas=deltas)


@pytest.mark.parametrize("mode", ["mean", "sample", "stack"])
def test_header_states_the_stride_and_how_a_step_is_made(mode):
    header = generate_c(_model(4, mode), prefix="s")["s_model.h"]
    assert "#define S_INPUT_STRIDE 4 " in header
    assert f"#define S_INPUT_STRIDE_MEAN {1 if mode == 'mean' else 0} " in header
    assert f"#define S_INPUT_STRIDE_STACK {1 if mode == 'stack' else 0} " in header
    assert "#define S_RAW_CHANNELS 3 " in header
    assert f"#define S_INPUT_DIM {12 if mode == 'stack' else 3}\n" in header
    assert "The model reads the recording at 1/S_INPUT_STRIDE of its sampling rate" in header
    assert "s_classify does this itself: give it the raw samples." in header
    if mode == "mean":
        assert "Step j's input is the mean, per\n * channel, of raw samples" in header
    elif mode == "stack":
        assert "Step j's input is raw samples\n * j*S_INPUT_STRIDE .. j*S_INPUT_STRIDE + " \
            "S_INPUT_STRIDE - 1 side by side" in header
        assert "its last sample repeated to fill it" in header
    else:
        assert "Step j's input is raw sample\n * j*S_INPUT_STRIDE" in header
    plain = generate_c(random_model(3, 12, 4, seed=8), prefix="s")["s_model.h"]
    assert "#define S_INPUT_STRIDE 1 " in plain and "#define S_INPUT_STRIDE_MEAN 0 " in plain
    assert "#define S_INPUT_STRIDE_STACK 0 " in plain and "#define S_RAW_CHANNELS 3 " in plain
    assert "One step per raw sample (S_INPUT_STRIDE 1): step every sample." in plain
    text = generate_c(random_model(2, 3, 5, vocab_size=5, seed=7), prefix="t")["t_model.h"]
    assert "INPUT_STRIDE" not in text  # a text model reads tokens


def test_the_stride_survives_the_ir_json_and_is_described():
    ir = _model(6, "mean")
    again = QuantizedModel.from_json(ir.to_json())
    assert (again.input_stride, again.stride_mode) == (6, "mean")
    assert "input stride: one step per 6 samples of the recording (their mean)" in describe_ir(ir)
    with pytest.raises(ValueError, match="input_stride must be >= 1"):
        dataclasses.replace(ir, input_stride=0)
    stacked = _model(5, "stack")
    again = QuantizedModel.from_json(stacked.to_json())
    assert (again.input_stride, again.stride_mode, again.input_dim) == (5, "stack", 15)
    assert "input stride: one step per 5 samples of the recording (all of them side by side: " \
        "3 channels x 5)" in describe_ir(stacked)
    with pytest.raises(ValueError, match=r"the input \(15\) must be a multiple of it"):
        dataclasses.replace(stacked, input_stride=4)
    deltas = _model(4, "stack", deltas=True)
    again = QuantizedModel.from_json(deltas.to_json())
    assert (again.input_stride, again.input_dim, again.input_deltas) == (4, 24, True)
    assert "input differences: each raw sample's channels, then their first differences" \
        in describe_ir(deltas)
    assert "input differences" not in describe_ir(stacked)
    with pytest.raises(ValueError, match=r"input_deltas: a classifier whose input \(15\)"):
        dataclasses.replace(stacked, input_deltas=True)  # 15 = 5 samples x 3: no differences


@pytest.mark.parametrize(("mode", "stride", "deltas"), [
    ("mean", 4, False), ("sample", 4, False), ("stack", 4, False),
    ("mean", 4, True), ("sample", 4, True), ("stack", 4, True), ("sample", 1, True)])
def test_classify_of_raw_samples_equals_the_simulator_on_the_strided_steps(mode, stride, deltas):
    """With deltas (``--deltas``) classify also makes each sample's first differences."""
    ir = _model(stride, mode, deltas)
    rng = np.random.default_rng(2)
    # raw recordings of 1 to 45 samples: lengths that are and are not multiples of the stride
    lengths = np.concatenate([[1, 3, 4, 5, 8, 40, 41, 43, 45], rng.integers(1, 46, 51)])
    raw = [(rng.normal(0, 1.5, (n, 3)) * ir.norm_std[:3] + ir.norm_mean[:3]).astype(np.float32)
           for n in lengths]
    files = {**generate_c(ir, prefix="s", profile="tflm"), "main.c": MAIN}
    assert f"#define S_INPUT_DELTAS {int(deltas)} " in files["s_model.h"]
    exe = compile_program(files, ["main.c", "s_model.c", "s_io.c"], libraries=("-lm",))
    stdin = "\n".join(f"{len(r)} " + " ".join(f"{v:.9g}" for v in r.reshape(-1)) for r in raw)
    lines = run_program(exe, stdin.encode(), []).stdout.decode().split()
    assert lines[:4] == [str(stride), "1" if mode == "mean" and stride > 1 else "0",
                         "1" if mode == "stack" else "0", "3"]
    answers = np.array([int(v) for v in lines[4:]])

    padded = np.zeros((len(raw), lengths.max(), 3))
    for n, r in enumerate(raw):
        padded[n, : len(r)] = r
    if deltas:  # as the data were read in training: each sample, then its difference
        padded = with_deltas(padded, lengths)
        assert padded.shape[2] == 6
    steps, step_lengths = strided(padded, lengths, stride, mode)
    normalized = ((steps - ir.norm_mean) / ir.norm_std).astype(np.float32)
    y = Simulator(ir, "tflm").run(ir.input_quant.quantize(normalized)).y
    want = np.argmax(y[np.arange(len(raw)), step_lengths - 1], axis=1)
    np.testing.assert_array_equal(answers, want)
    assert len(set(answers.tolist())) > 1  # not a constant answer


@pytest.mark.parametrize(("mode", "deltas"), [("mean", "auto"), ("stack", "off"),
                                             ("stack", "auto"), ("mean", "on")])
def test_elman_run_with_long_unequal_sequences_carries_the_stride_into_the_c(
        tmp_path, mode, deltas):
    """Median 300 samples (auto stride 8): `elman run` verifies bit-exact, the header of the
    generated C says stride 8 and how a step is made, and classify over the raw test
    recordings answers what the simulator answers on the data as the model read it. With
    differences each raw sample is followed by its own (a stack: 16 inputs a step): auto
    adds them to the stack of 8 (they fit in 16 inputs), not to the mean."""
    import json

    from elman.data.held_out import load_held_out
    from elman.quantize.reader import read_ir
    from typer.testing import CliRunner

    from elman.cli import app

    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    lengths = rng.integers(250, 351, 40)
    t = np.arange(350)
    x = np.sin(t[None, :] * (0.05 + 0.05 * y[:, None])) + rng.normal(0, 0.3, (40, 350))
    x[t[None, :] >= lengths[:, None]] = np.nan  # end padding
    np.savez(tmp_path / "long.npz", x=x[:30], y=y[:30], x_test=x[30:], y_test=y[30:])
    run = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "run", "--data", f"npz:{tmp_path / 'long.npz'}", str(run), "--epochs", "2", "--units",
        "8", "--quiet", "--cpu", "cortex-m4", "--opt", "O2", "--prefix", "s", "--stride-mode",
        mode, "--deltas", deltas])
    assert result.exit_code == 0, result.output
    spec = json.loads((run / "data_spec.json").read_text())
    on = deltas == "on" or (deltas == "auto" and mode == "stack")
    assert (spec["stride"], spec["stride_mode"], spec.get("deltas", False)) == (8, mode, on)
    verify = json.loads((run / "verify_report.json").read_text())
    assert verify["ok"] and all(p["exact"] for p in verify["pairs"])
    assert len(verify["pairs"]) >= 10
    header = (run / "c" / "s_model.h").read_text()
    assert "#define S_INPUT_STRIDE 8 " in header
    assert f"#define S_INPUT_STRIDE_MEAN {int(mode == 'mean')} " in header
    assert f"#define S_INPUT_STRIDE_STACK {int(mode == 'stack')} " in header
    assert f"#define S_INPUT_DIM {(8 if mode == 'stack' else 1) * (1 + on)}\n" in header
    assert f"#define S_INPUT_DELTAS {int(on)} " in header and "#define S_RAW_CHANNELS 1 " in header
    assert f"#define S_WINDOW_STEPS {-(-350 // 8)} " in header
    ir = read_ir(run / "model_int8.tflite")
    assert (ir.input_stride, ir.stride_mode, ir.input_deltas) == (8, mode, on)

    held = load_held_out(run)
    np.testing.assert_array_equal(held.lengths, -(-lengths[30:] // 8))
    y_sim = Simulator(ir, "tflm").run(ir.input_quant.quantize(held.inputs)).y
    want = np.argmax(y_sim[np.arange(10), held.lengths - 1], axis=1)
    files = {**{p.name: p.read_text() for p in (run / "c").glob("s_*.[ch]")}, "main.c": MAIN}
    exe = compile_program(files, ["main.c", "s_model.c", "s_io.c"], libraries=("-lm",))
    raw = [x[n, : lengths[n], None].astype(np.float32) for n in range(30, 40)]
    stdin = "\n".join(f"{len(r)} " + " ".join(f"{v:.9g}" for v in r.reshape(-1)) for r in raw)
    answers = [int(v) for v in run_program(exe, stdin.encode(), []).stdout.decode().split()[4:]]
    np.testing.assert_array_equal(answers, want)
