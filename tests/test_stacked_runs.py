"""A stacked model through the stages after quantization, on real BasicMotions data:
`elman codegen --example` (the QEMU firmware), `elman mcu` (every build bit-exact), and
the per-layer macros of the header. The model is converted by TF (``stacked_tflite``)
until `elman quantize` converts stacked Keras models."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from elman.firmware_codegen.api import codegen_run
from elman.firmware_codegen.arm.api import mcu_run
from elman.firmware_codegen.arm.example import (
    build_example,
    example_dir,
    example_samples,
    parse_example_output,
    run_example,
)
from elman.quantize.reader import read_ir
from elman.runtime.simulator import Simulator
from stacked_tflite import stacked_step_tflite


@pytest.fixture
def stacked_run(bm_run, tmp_path):
    run = tmp_path / "stacked"
    run.mkdir()
    shutil.copy(bm_run / "data_spec.json", run)
    (run / "model_int8.tflite").write_bytes(stacked_step_tflite(
        6, (12, 8), 4, seed=5, head_steps="last", window_steps=100, x_range=3.0))
    return run


def test_header_states_the_layers_window_and_state_size(stacked_run):
    codegen_run(stacked_run, prefix="deep")
    header = (stacked_run / "c" / "deep_model.h").read_text()
    macros = dict(re.findall(r"#define (DEEP_\w+) (\S+)", header))
    assert macros["DEEP_NUM_LAYERS"] == "2"
    assert (macros["DEEP_LAYER1_UNITS"], macros["DEEP_LAYER2_UNITS"]) == ("12", "8")
    assert (macros["DEEP_LAYER1_STATE_OFFSET"], macros["DEEP_LAYER2_STATE_OFFSET"]) == ("0", "12")
    assert macros["DEEP_STATE_BYTES"] == "20" and macros["DEEP_WINDOW_STEPS"] == "100"
    assert macros["DEEP_HEAD_EVERY_STEP"] == "0" and macros["DEEP_OUTPUT_DIM"] == "4"
    assert "must not be NULL" in header


def test_example_firmware_of_a_stacked_model(stacked_run):
    codegen_run(stacked_run, prefix="deep", example=True)
    elf = build_example(stacked_run / "c" / example_dir("deep"))
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is not installed: built the image, did not run it")
    printed = parse_example_output(run_example(elf, timeout_s=60))
    ir = read_ir(stacked_run / "model_int8.tflite")
    samples = example_samples(stacked_run, ir)
    expected = Simulator(ir, "tflm").run(samples.inputs)
    assert len(printed) == len(samples.labels) >= 2
    for i, p in enumerate(printed):
        np.testing.assert_array_equal(p.h, expected.h[i, -1])  # both layers' states
        np.testing.assert_array_equal(p.y, expected.y[i, -1])


def test_mcu_run_of_a_stacked_model_is_bit_exact(stacked_run):
    report = mcu_run(stacked_run, cpus=("cortex-m0plus", "cortex-m4"), opts=("O2",),
                     profiles=("tflm", "tflite"), limit=2, progress=False)
    assert report["all_bit_exact"] and len(report["builds"]) == 4
    assert report["model"]["layer_units"] == [12, 8] and report["model"]["state_bytes"] == 20
    for b in report["builds"]:
        assert b["state_bytes"] == 20 and b["bit_exact"]
        assert b["comparison"]["compared_hidden"] == 2 * 100 * 20
