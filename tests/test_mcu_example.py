"""The QEMU example firmware (`elman codegen --example`): builds, runs, prints exact results."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from elman.firmware_codegen.api import codegen_run
from elman.firmware_codegen.arm.example import (
    ExampleSamples,
    build_example,
    example_dir,
    example_files,
    example_samples,
    parse_example_output,
    run_example,
    verdict,
)
from elman.firmware_codegen.generate import generate_c
from elman.layers.random_model import random_model
from elman.quantize.reader import read_ir
from elman.runtime.simulator import Simulator


@pytest.fixture
def bm_copy(bm_run, tmp_path):
    run = tmp_path / "bm"
    shutil.copytree(bm_run, run)
    return run


def test_example_firmware_prints_the_simulators_results(bm_copy):
    paths = codegen_run(bm_copy, prefix="gesture", example=True)
    folder = bm_copy / "c" / example_dir("gesture")
    assert {folder / "main.c", folder / "example.ld", folder / "Makefile"} <= set(paths)
    elf = build_example(folder)
    assert elf.exists()
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is not installed: built the image, did not run it")
    text = run_example(elf, timeout_s=60)
    assert text.strip().splitlines()[-1] == "PASS" and verdict(text) == 0
    printed = parse_example_output(text)

    ir = read_ir(bm_copy / "model_int8.tflite")
    samples = example_samples(bm_copy, ir)
    expected = Simulator(ir, "tflm").run(samples.inputs)
    assert len(printed) == len(samples.labels) >= 2
    for i, p in enumerate(printed):
        assert p.label == int(samples.labels[i])
        np.testing.assert_array_equal(p.h, expected.h[i, -1])
        np.testing.assert_array_equal(p.y, expected.y[i, -1])
        assert p.argmax == int(np.argmax(expected.y[i, -1]))


def test_example_is_deterministic(bm_copy, tmp_path):
    a = codegen_run(bm_copy, example=True, out_dir=tmp_path / "a")
    b = codegen_run(bm_copy, example=True, out_dir=tmp_path / "b")
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes()


def test_text_example_steps_tokens(tmp_path):
    ir = random_model(6, 16, 20, seed=5, vocab_size=20)
    ids = np.random.default_rng(1).integers(0, 20, (3, 12))
    samples = ExampleSamples(inputs=ids, labels=np.array([4, 5, 6]), tokens=True)
    files = generate_c(ir, prefix="tx", profile="tflite")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    folder = tmp_path / example_dir("tx")
    folder.mkdir()
    sources = [n for n in files if n.endswith(".c")]
    for name, text in example_files(ir, samples, sources, prefix="tx", profile="tflite").items():
        (folder / name).write_text(text)
    elf = build_example(folder)
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is not installed: built the image, did not run it")
    printed = parse_example_output(run_example(elf, timeout_s=60))
    expected = Simulator(ir, "tflite").run_tokens(ids)
    assert [p.label for p in printed] == [4, 5, 6]
    for i, p in enumerate(printed):
        np.testing.assert_array_equal(p.h, expected.h[i, -1])
        np.testing.assert_array_equal(p.y, expected.y[i, -1])


def test_example_firmware_says_fail_and_counts_mismatches(tmp_path):
    """Expected values from another model: the firmware's last line is FAIL (n mismatching
    values) with n counted from the simulator, and exit status 1."""
    ran, expected_by = random_model(4, 12, 3, seed=40), random_model(4, 12, 3, seed=41)
    inputs = np.random.default_rng(2).integers(-128, 128, (3, 10, 4), dtype=np.int8)
    samples = ExampleSamples(inputs=inputs, labels=np.array([0, 1, 2]), tokens=False)
    files = generate_c(ran, prefix="bad")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    folder = tmp_path / example_dir("bad")
    folder.mkdir()
    sources = [n for n in files if n.endswith(".c")]
    for name, text in example_files(expected_by, samples, sources, prefix="bad").items():
        (folder / name).write_text(text)
    elf = build_example(folder)
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is not installed: built the image, did not run it")
    text = run_example(elf, timeout_s=60)
    got, want = Simulator(ran, "tflm").run(inputs), Simulator(expected_by, "tflm").run(inputs)
    n = int((got.h[:, -1] != want.h[:, -1]).sum() + (got.y[:, -1] != want.y[:, -1]).sum())
    assert n > 0
    assert text.strip().splitlines()[-1] == f"FAIL ({n} mismatching values)"
    assert verdict(text) == n
