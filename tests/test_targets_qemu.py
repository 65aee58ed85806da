"""The Cortex-M55 with Helium under QEMU (mps3-an547): the MVE kernels bit-exact with the
simulator, and the instruction count of QEMU's execution trace checked against unicorn's."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from elman.firmware_codegen.arm.api import mcu_run
from elman.firmware_codegen.arm.emulate import run_emulated
from elman.layers.random_model import random_model
from elman.runtime.simulator import Simulator
from elman.targets.disassembly import disassemble
from elman.targets.qemu import run_qemu


def test_qemu_trace_counts_exactly_what_unicorn_counts():
    """The same Cortex-M4 code (soft-float, DSP kernels) stepped by unicorn's M4 and by QEMU's
    M55 (which runs ARMv7E-M code): every count agrees, per step and per function."""
    ir = random_model(6, 32, 4, seed=3)
    x = np.random.default_rng(3).integers(-128, 128, (2, 3, 6), dtype=np.int8)
    q = run_qemu(ir, x, tokens=False, profile="tflm", cpu="cortex-m4", opt="O2",
                 prefix="elman", work_dir=None, portable=False, machine="mps3-an547",
                 qemu_cpu="cortex-m55")
    u = run_emulated(ir, x, cpu="cortex-m4", opt="O2")
    np.testing.assert_array_equal(q.outputs.h, u.outputs.h)
    np.testing.assert_array_equal(q.outputs.y, u.outputs.y)
    assert (q.instructions_per_step, q.instructions_min, q.instructions_max) == (
        u.instructions_per_step, u.instructions_min, u.instructions_max)
    assert q.by_function == u.by_function and q.cycles_per_step == u.cycles_per_step
    assert q.stack_bytes == u.stack_bytes and q.sizes == u.sizes


@pytest.fixture(scope="module")
def model_128():
    ir = random_model(6, 128, 4, seed=128)
    x = np.random.default_rng(128).integers(-128, 128, (1, 2, 6), dtype=np.int8)
    return ir, x


@pytest.mark.parametrize("profile", ["tflm", "tflite"])
def test_cortex_m55_mve_step_is_bit_exact_and_counted(model_128, profile):
    ir, x = model_128
    run = run_emulated(ir, x, cpu="cortex-m55", opt="O2", profile=profile)
    expected = Simulator(ir, profile).run(x)
    np.testing.assert_array_equal(run.outputs.h, expected.h)
    np.testing.assert_array_equal(run.outputs.y, expected.y)
    # the MVE kernel: per 4 rows x 16 columns, VLD40-43 + VLDRB + 4 VMLADAVA + LE = 10
    # instructions for 64 MACs; with the 6-input remainder blocks and calls, <= 0.2 per MAC
    assert run.matvec_instructions_per_mac is not None
    assert run.matvec_instructions_per_mac <= 0.2
    assert run.instructions_min > 0 and run.cycles_per_step > run.instructions_per_step * 0.9
    if profile == "tflm":  # issue 19's goal: the whole step, the MVE epilogue (VQRDMULH ...)
        assert run.instructions_max / ir.macs_per_step <= 0.5


def test_cortex_m55_mve_epilogue_on_unit_counts_not_a_multiple_of_4():
    """The Helium epilogue for whole groups of 4 units, the scalar code for the rest, two
    layers (the second reads the first's new state), bit for bit."""
    ir = random_model(6, (130, 7), 4, seed=5)
    x = np.random.default_rng(5).integers(-128, 128, (2, 3, 6), dtype=np.int8)
    run = run_emulated(ir, x, cpu="cortex-m55", opt="O2")
    expected = Simulator(ir).run(x)
    np.testing.assert_array_equal(run.outputs.h, expected.h)
    np.testing.assert_array_equal(run.outputs.y, expected.y)


def test_the_mve_path_is_what_runs(model_128, tmp_path):
    ir, x = model_128
    run_emulated(ir, x, cpu="cortex-m55", opt="O2", work_dir=tmp_path)
    mnemonics = {mn for _, mn, _ in disassemble(tmp_path / "model.elf", "cortex-m55")}
    # objdump spells VMLADAVA by its alias VMLAVA
    assert {"vld40.32", "vld43.32", "vmlava.s8", "le"} <= mnemonics
    assert not any(mn.startswith("smlad") for mn in mnemonics)


def test_cortex_m55_on_real_data(bm_run, tmp_path):
    run = tmp_path / "bm"
    shutil.copytree(bm_run, run)
    report = mcu_run(run, cpus=("cortex-m55",), opts=("O2",), profiles=("tflm", "tflite"),
                     limit=2, progress=False, clock="160MHz")
    assert report["all_bit_exact"] is True
    for b in report["builds"]:
        assert b["comparison"]["mismatches"] == 0 and b["comparison"]["compared"] > 0
        assert b["instructions_per_step"] > 0 and b["stack_bytes"] > 0
        assert b["microseconds_per_step"] == pytest.approx(
            b["cycles_per_step"] / 160.0, rel=1e-3, abs=0.01)
    assert report["targets"]["cortex-m55"]["emulator"] == "qemu"
