"""The Arduino Uno (ATmega328P) as the ``atmega328p`` entry of the target registry: the
generated C built with avr-gcc (16-bit int, weights in flash through PROGMEM) and run in
simavr through ``run_emulated`` / ``elman mcu --cpu atmega328p`` / ``elman verify``,
bit-exact with the simulator on every step, with exact cycle and instruction counts; the
Arduino package's sketch built by Debian's arduino-builder for the Uno and run in simavr,
printing PASS. No simavr process outlives a test."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from elman.firmware_codegen.arm.emulate import run_emulated, run_emulated_tokens
from elman.firmware_codegen.generate import example_values, generate_c
from elman.firmware_codegen.packages import package_files
from elman.layers.random_model import random_model
from elman.runtime.simulator import Simulator
from elman.targets import get_target, known_targets_line
from elman.targets.simavr import ModelDoesNotFit, fits, model_sizes, run_simavr
from typer.testing import CliRunner

from elman.cli import app
from elman.errors import ToolchainError

pytestmark = pytest.mark.skipif(
    shutil.which("avr-gcc") is None or not Path("/usr/include/simavr/sim_avr.h").exists(),
    reason="needs avr-gcc, avr-libc and libsimavr-dev (scripts/system-deps.sh installs them: "
           "apt-get install -y gcc-avr avr-libc simavr libsimavr-dev)")

UNO = get_target("atmega328p")


def _simavr_pids(marker: bytes) -> set[int]:
    """simavr processes (elman's runner or simavr itself) started under ``marker``, an
    environment entry their parents set: found even once orphaned, and never another
    test worker's."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")[0]
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"simavr" in Path(cmd.decode(errors="replace")).name.encode() and \
                    marker in environ:
                pids.add(int(entry.name))
    return pids


@pytest.fixture(autouse=True)
def no_simavr_left_behind(monkeypatch, request):
    value = f"{os.getpid()}:{request.node.nodeid}"
    monkeypatch.setenv("ELMAN_TEST_SIMAVR_OWNER", value)
    yield
    left = _simavr_pids(f"ELMAN_TEST_SIMAVR_OWNER={value}".encode())
    assert not left, f"simavr processes left running: {sorted(left)}"


def test_the_uno_is_a_registry_entry():
    assert get_target("arduino-uno") is UNO is get_target("uno")
    assert UNO.name == "atmega328p" and UNO.emulator == "simavr" and UNO.cycles.exact
    assert (UNO.flash_bytes, UNO.ram_bytes, UNO.clock_hz) == (32768, 2048, 16e6)
    assert "atmega328p (ATmega328P (Arduino Uno)) [also arduino-uno, uno]" in \
        known_targets_line()


@pytest.mark.parametrize(("profile", "units", "extreme"), [
    ("tflm", (16,), False), ("tflite", (16,), False),
    ("tflm", (7, 5, 9), True), ("tflite", (13, 6), True)])
def test_uno_is_bit_exact_with_the_simulator(profile, units, extreme):
    ir = random_model(6, units, 4, seed=5, extreme=extreme)
    x = np.random.default_rng(1).integers(-128, 128, (3, 12, 6), dtype=np.int8)
    sim = Simulator(ir, profile).run(x)
    run = run_emulated(ir, x, profile=profile, cpu="atmega328p", opt="Os")
    np.testing.assert_array_equal(run.outputs.h, sim.h)
    np.testing.assert_array_equal(run.outputs.y, sim.y)
    last = run_simavr(ir, x, tokens=False, profile=profile, cpu="atmega328p", opt="Os",
                      prefix="elman", head_on_last_step=True)  # y = NULL until the end
    np.testing.assert_array_equal(last.outputs.h, sim.h)
    np.testing.assert_array_equal(last.outputs.y[:, -1], sim.y[:, -1])
    assert last.cycles_per_step < run.cycles_per_step  # the head skipped on most steps
    assert run.cycles_exact and run.sizes["ram"] == 0  # weights and tables in flash
    assert run.sizes["weights_tables"] >= sum(L.units * (L.units + 6) for L in ir.layers[:1])
    assert 0 < run.sizes["flash"] < UNO.flash_bytes and 0 < run.stack_bytes < 512
    # AVR: 1 to 4 cycles an instruction (MUL 2, LPM 3, CALL 4)
    assert run.instructions_per_step < run.cycles_per_step < 4 * run.instructions_per_step


def test_uno_text_model_token_step_is_bit_exact():
    ir = random_model(2, (12, 5), 7, vocab_size=7, seed=3)
    ids = np.random.default_rng(0).integers(0, 7, (2, 9))
    run = run_emulated_tokens(ir, ids, profile="tflite", cpu="arduino-uno")
    sim = Simulator(ir, "tflite").run_tokens(ids)
    np.testing.assert_array_equal(run.outputs.h, sim.h)
    np.testing.assert_array_equal(run.outputs.y, sim.y)


def test_uno_counts_are_exact_and_repeatable():
    ir = random_model(6, 16, 4, seed=5)
    x = np.random.default_rng(1).integers(-128, 128, (2, 5, 6), dtype=np.int8)
    first = run_emulated(ir, x, cpu="atmega328p", opt="Os")
    again = run_emulated(ir, x, cpu="atmega328p", opt="Os")
    assert first.cycles_per_step == again.cycles_per_step > 10_000
    assert first.instructions_per_step == again.instructions_per_step > 5_000
    assert first.instructions_max == again.instructions_max


def test_model_that_does_not_fit_the_uno_is_one_error():
    big = random_model(6, 200, 4, seed=1)  # 200 x 206 int8 weights: more than 32 KB of flash
    assert not fits(big, "atmega328p") and fits(big, "cortex-m0plus")
    assert fits(random_model(6, 64, 4, seed=1), "atmega328p")
    x = np.zeros((1, 1, 6), np.int8)
    with pytest.raises(ModelDoesNotFit, match="does not fit the ATmega328P"):
        run_emulated(big, x, cpu="atmega328p", opt="Os")
    near = random_model(6, 170, 4, seed=1)  # the weights fit (30 KB), weights + code do not
    assert not fits(near, "atmega328p", profile="tflm", opt="Os")
    with pytest.raises(ModelDoesNotFit, match="does not fit the ATmega328P"):
        run_emulated(near, x, cpu="atmega328p", opt="Os")
    wide = random_model(6, 16, 4, seed=1, state_bits=16)
    assert not fits(wide, "atmega328p")
    with pytest.raises(ToolchainError, match="int16 state"):
        run_emulated(wide, x.astype(np.int16), cpu="atmega328p")


def test_model_sizes_read_from_the_linker_map():
    map_text = """Discarded input sections
 .text.unused   0x0000000000000000       0x40 /tmp/x/m_model.o
Linker script and memory map
 .progmem.data.m_w
                0x0000000000000068      0x100 /tmp/x/m_model.o
 .text.m_step   0x0000000000000168       0x80 /tmp/x/m_model.o
 .text          0x0000000000000000       0x8e /usr/lib/avr/lib/avr5/crtatmega328p.o
 .text.main     0x00000000000001e8       0x30 /tmp/x/unoharness.o
 .text.libgcc.mul
                0x0000000000000218       0x1e /usr/lib/gcc/avr/5.4.0/avr5/libgcc.a(_mulsidi3.o)
 .bss.state     0x0000000000800100       0x10 /tmp/x/unoharness.o
 .bss.m_count   0x0000000000800110        0x2 /tmp/x/m_model.o
"""
    sizes = model_sizes(map_text)
    assert (sizes.code, sizes.weights, sizes.data, sizes.bss) == (0x80 + 0x1e, 0x100, 0, 2)


def test_mcu_on_the_uno_runs_real_held_out_basicmotions(bm_run, tmp_path):
    """`elman mcu --cpu arduino-uno`: flash, RAM, exact cycles and instructions per step, every
    step of real held-out BasicMotions sequences bit-exact with the simulator."""
    run = tmp_path / "run"
    shutil.copytree(bm_run, run)
    result = CliRunner().invoke(app, ["mcu", str(run), "--cpu", "arduino-uno", "--opt", "Os",
                                      "--profile", "tflm", "--profile", "tflite",
                                      "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert "atmega328p" in result.output and "exact on atmega328p" in result.output
    assert "16 MHz (atmega328p)" in result.output
    report = json.loads((run / "mcu_report.json").read_text())
    assert report["data"]["sequences"] == 3 and report["data"]["steps_per_sequence"] == 100
    rows = report["builds"]
    assert [(r["cpu"], r["profile"]) for r in rows] == [("atmega328p", "tflm"),
                                                        ("atmega328p", "tflite")]
    for r in rows:
        assert r["bit_exact"] and r["comparison"]["compared"] > 0
        assert r["cycles_exact"] and r["clock_hz"] == 16e6
        assert 0 < r["flash"] < 32768 and 0 < r["ram"] < 2048 and r["ram_static"] == 0
        assert r["microseconds_per_step"] == pytest.approx(r["cycles_per_step"] / 16, rel=1e-3)
        assert r["instructions_per_step"] < r["cycles_per_step"]


def test_uno_runs_real_held_out_basicmotions_bit_exact(bm_run):
    from elman.quantize.reader import read_ir

    from elman.verify import load_verify_inputs

    ir = read_ir(bm_run / "model_int8.tflite")
    x_q = load_verify_inputs(bm_run, ir).x_q[:6]  # 6 real test sequences x 100 steps
    run = run_emulated(ir, x_q, cpu="atmega328p", opt="O2")
    sim = Simulator(ir, "tflm").run(x_q)
    np.testing.assert_array_equal(run.outputs.h, sim.h)
    np.testing.assert_array_equal(run.outputs.y, sim.y)
    assert len(np.unique(sim.h)) > 50  # a real trajectory, not a constant


def _arduino_builder() -> tuple[str, Path] | None:
    builder = shutil.which("arduino-builder")
    hardware = Path("/usr/share/arduino/hardware")
    if builder is None or not (hardware / "arduino" / "avr" / "boards.txt").exists():
        return None
    return builder, hardware


@pytest.mark.skipif(_arduino_builder() is None or shutil.which("simavr") is None,
                    reason="needs arduino-builder, arduino-core-avr and simavr "
                           "(apt-get install -y arduino-builder arduino-core-avr simavr)")
def test_arduino_sketch_builds_for_the_uno_and_prints_pass(tmp_path):
    """The package's example sketch, built by the Arduino builder with the Arduino AVR core
    for an Uno (arduino:avr:uno), then run in simavr: Serial prints PASS."""
    builder, hardware = _arduino_builder()  # type: ignore[misc]
    ir = random_model(6, 32, 4, seed=4, window_steps=20, labels=("idle", "wave", "tap", "x"))
    files = package_files(ir, generate_c(ir, prefix="gest"), example_values(ir), ["arduino"],
                          prefix="gest", profile="tflm")
    libraries = tmp_path / "libraries"
    for name, text in files.items():
        (libraries / name).parent.mkdir(parents=True, exist_ok=True)
        (libraries / name).write_text(text)
    sketch = libraries / "gest_library" / "examples" / "gest_self_check" / "gest_self_check.ino"
    build = tmp_path / "build"
    build.mkdir()
    # Debian's arduino-core-avr 1.8.7 with avr-gcc 5.4 lacks DECIMAL_DIG in WString.cpp
    done = subprocess.run([builder, "-compile", "-hardware", str(hardware), "-hardware",
                           "/usr/share/arduino-builder", "-tools", "/usr/share/arduino-builder",
                           "-fqbn", "arduino:avr:uno", "-libraries", str(libraries),
                           "-build-path", str(build),
                           "-prefs=compiler.cpp.extra_flags=-DDECIMAL_DIG=17", str(sketch)],
                          capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    used = re.search(r"Global variables use (\d+) bytes", done.stdout)
    assert used and int(used.group(1)) < 512  # the weights did not land in RAM
    printed = _simavr_serial(build / "gest_self_check.ino.elf")
    assert printed[0] == "PASS", printed
    assert printed[1] == f"answer: {ir.labels[int(np.argmax(example_values(ir).y))]}"
    assert re.fullmatch(r"us per step: \d+", printed[2])


def _simavr_serial(elf: Path, lines: int = 3, timeout_s: float = 120.0) -> list[str]:
    """The first ``lines`` lines the sketch prints on Serial under simavr (a sketch never
    ends: simavr is stopped once they are there)."""
    proc = subprocess.Popen(["timeout", f"{timeout_s:g}", "simavr", "-m", "atmega328p", "-f",
                             "16000000", str(elf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    got: list[str] = []
    try:
        assert proc.stdout is not None
        while len(got) < lines:
            raw = proc.stdout.readline()
            if not raw:
                break
            text = re.sub(r"\x1b\[[0-9;]*m", "", raw).strip().rstrip(".")
            if text and not text.startswith("Loaded"):
                got.append(text)
    finally:  # the whole group: killing `timeout` alone left simavr running for minutes
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return got
