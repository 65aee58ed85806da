"""The target registry: every core is one entry; unknown cores are one clear error; the new
cores (Cortex-M33, RISC-V RV32IMC) run the generated step bit-exact and counted."""

from __future__ import annotations

import numpy as np
import pytest
from elman.firmware_codegen.arm.build import build_image
from elman.firmware_codegen.arm.emulate import run_emulated
from elman.firmware_codegen.arm.machine import Machine
from elman.firmware_codegen.arm.toolchain import check_cpu_opt, compile_flags
from elman.layers.random_model import random_model
from elman.runtime.simulator import Simulator
from elman.targets import TARGETS, get_target, known_targets_line
from elman.targets.clock import parse_clock
from elman.targets.cycles import CYCLE_MODELS, classify
from typer.testing import CliRunner

from elman.cli import app
from elman.errors import ElmanError, ToolchainError

DSP_C = r"""
#include <stdint.h>
int32_t smlad_sxtb16(uint32_t a, uint32_t b, int32_t acc)
{
    uint32_t t;
    int32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(t) : "r"(a));
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(t), "r"(b), "r"(acc));
    return r;
}
int32_t qadd_ssat(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("qadd %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    __asm__("ssat %0, #8, %0" : "+r"(r));
    return r;
}
"""
# TT (test target, ARMv8-M only): decodes on an ARMv8-M core, UNDEFINED on ARMv7-M
TT_C = r"""
#include <stdint.h>
uint32_t test_target(uint32_t address)
{
    uint32_t r;
    __asm__ volatile(".inst.w 0xe840f000" : "=r"(r) : "r"(address) : "r0");
    (void)r;
    return address;
}
"""


def test_unknown_cpu_is_one_error_listing_every_target():
    with pytest.raises(ToolchainError) as exc:
        get_target("cortex-m3")
    message = str(exc.value)
    assert message.startswith("unknown cpu 'cortex-m3'; known targets: ")
    for name, target in TARGETS.items():
        assert f"{name} ({target.title})" in message
    assert message.endswith(known_targets_line())
    with pytest.raises(ToolchainError, match="known targets"):
        check_cpu_opt("cortex-m3", "O2")


def test_every_entry_is_complete():
    for name, t in TARGETS.items():
        assert t.name == name and t.kernels in ("dsp", "armv6m", "portable", "mve", "avr")
        assert t.emulator in ("unicorn", "qemu", "simavr") and t.cycle_model in CYCLE_MODELS
        assert compile_flags(name, "O2")[: len(t.flags)] == list(t.flags)
        d = t.to_dict()
        assert d["cycle_model"]["source"] and d["compiler"].endswith("gcc")
    assert {"cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33", "rv32imc",
            "atmega328p"} <= set(TARGETS)


def test_cortex_m33_model_executes_the_dsp_extension(tmp_path):
    image = build_image({"dsp.c": DSP_C}, tmp_path, cpu="cortex-m33", opt="O2",
                        entry_points=("smlad_sxtb16", "qadd_ssat"))
    m = Machine(image)
    # SXTB16(0x00FF0003) = (3, -1); SMLAD with (5, 2): 3*5 + (-1)*2 + 100
    assert m.call("smlad_sxtb16", 0x00FF0003, 0x00020005, 100).r0 == 113
    assert m.call("qadd_ssat", 0x7FFF_FFF0, 0x100).r0 == 127  # QADD saturates, SSAT too
    assert m.call("qadd_ssat", -300 & 0xFFFF_FFFF, 50).r0 == (-128) & 0xFFFF_FFFF


def test_cortex_m33_model_is_an_armv8m_core(tmp_path):
    """unicorn's M33 model decodes TT (ARMv8-M); its M4 model faults on the same code."""
    image = build_image({"tt.c": TT_C}, tmp_path / "m33", cpu="cortex-m33", opt="O2",
                        entry_points=("test_target",))
    assert Machine(image).call("test_target", 0x2000_0000).r0 == 0x2000_0000
    image4 = build_image({"tt.c": TT_C}, tmp_path / "m4", cpu="cortex-m4", opt="O2",
                         entry_points=("test_target",))
    with pytest.raises(ToolchainError, match="faulted"):
        Machine(image4).call("test_target", 0x2000_0000)


@pytest.fixture(scope="module")
def model_64():
    ir = random_model(6, 64, 4, seed=64)
    x = np.random.default_rng(64).integers(-128, 128, (2, 3, 6), dtype=np.int8)
    return ir, x


# exact instructions per step (mean over the steps) of the random 6-64-4 model at -O2, tflm;
# deterministic: a change of these numbers is a change of the generated code or its compiler
@pytest.mark.parametrize("cpu", ["cortex-m33", "rv32imc"])
@pytest.mark.parametrize("profile", ["tflm", "tflite"])
def test_new_cores_run_the_step_bit_exact_and_counted(model_64, cpu, profile):
    ir, x = model_64
    run = run_emulated(ir, x, cpu=cpu, opt="O2", profile=profile)
    expected = Simulator(ir, profile).run(x)
    np.testing.assert_array_equal(run.outputs.h, expected.h)
    np.testing.assert_array_equal(run.outputs.y, expected.y)
    again = run_emulated(ir, x, cpu=cpu, opt="O2", profile=profile)
    assert again.instructions_per_step == run.instructions_per_step
    assert run.cycles_per_step >= run.instructions_per_step  # no core issues two at once here
    if cpu == "cortex-m33":  # the M4's DSP kernels: the same matrix-vector instructions
        m4 = run_emulated(ir, x, cpu="cortex-m4", opt="O2", profile=profile)
        assert run.matvec_instructions_per_mac == m4.matvec_instructions_per_mac
        # the rest is the same C, scheduled by GCC for each core: within a few percent
        assert abs(run.instructions_per_step - m4.instructions_per_step) < 0.03 * \
            m4.instructions_per_step
    else:
        assert run.sizes["code"] > 0 and run.stack_bytes > 0


def test_instruction_classes():
    assert classify("smlad") == "mac" and classify("SXTB16") == "alu"
    assert classify("ldrd") == "load_pair" and classify("ldr.w") == "load"
    assert classify("pop") == "multiple" and classify("bne.n") == "branch"
    assert classify("vmladava.s8") == "vector_mac" and classify("vldrb.8") == "vector_load"
    assert classify("mulh") == "mul_long" and classify("c.lw") == "load"
    assert classify("le") == "loop" and classify("addi") == "alu"
    m4 = CYCLE_MODELS["cortex-m4"]
    assert m4.instruction_cycles("pop", "{r4, r5, r6, pc}") == 5
    assert m4.instruction_cycles("push", "{r4-r7, lr}") == 6


def test_clock_parsing_and_its_error():
    assert parse_clock("64MHz") == 64e6 and parse_clock("480 mhz") == 480e6
    assert parse_clock("32kHz") == 32e3 and parse_clock("16000000") == 16e6
    assert parse_clock("1.5GHz") == 1.5e9
    for bad in ("fast", "64 MB", "-3MHz", "0"):
        with pytest.raises(ElmanError, match="--clock"):
            parse_clock(bad)


def test_mcu_refuses_a_bad_clock_before_any_work(tmp_path):
    result = CliRunner().invoke(app, ["mcu", str(tmp_path), "--clock", "fast"])
    assert result.exit_code == 1
    assert "error: --clock 'fast' is not a clock frequency" in result.output
    assert not (tmp_path / "mcu_report.json").exists()


def test_cortex_m4_cycle_model_against_published_cycles_per_mac():
    """NNoM's GRU on an STM32L476 (Cortex-M4): ~2.2 cycles/MAC with CMSIS-NN, ~5.3 in plain
    C. The M4 model gives elman's 128-unit step figures of the same order."""
    ir = random_model(6, 128, 4, seed=1)
    x = np.random.default_rng(0).integers(-128, 128, (1, 2, 6), dtype=np.int8)
    dsp = run_emulated(ir, x, cpu="cortex-m4", opt="O2")
    plain = run_emulated(ir, x, cpu="cortex-m4", opt="O2", portable=True)
    dsp_cpm = dsp.cycles_per_step / ir.macs_per_step
    plain_cpm = plain.cycles_per_step / ir.macs_per_step
    assert 1.5 <= dsp_cpm <= 3.0 and 4.0 <= plain_cpm <= 6.5, (dsp_cpm, plain_cpm)
    assert dsp.microseconds_per_step(64e6) == pytest.approx(dsp.cycles_per_step / 64)
