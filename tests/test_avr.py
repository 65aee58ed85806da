"""The Arduino Uno (ATmega328P): the generated C built with avr-gcc (16-bit int, weights in
flash through PROGMEM) and run in simavr, bit-exact with the simulator on every step, with
exact cycle counts; the Arduino package's sketch built by Debian's arduino-builder for the
Uno and run in simavr, printing PASS."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from elman.firmware_codegen.avr import FLASH_BYTES, RAM_BYTES, run_avr
from elman.firmware_codegen.generate import example_values, generate_c
from elman.firmware_codegen.packages import package_files
from elman.layers.random_model import random_model
from elman.runtime.simulator import Simulator

pytestmark = pytest.mark.skipif(
    shutil.which("avr-gcc") is None or not Path("/usr/include/simavr/sim_avr.h").exists(),
    reason="needs avr-gcc, avr-libc and libsimavr-dev "
           "(apt-get install -y gcc-avr avr-libc simavr libsimavr-dev)")


@pytest.mark.parametrize(("profile", "units", "extreme"), [
    ("tflm", (16,), False), ("tflite", (16,), False),
    ("tflm", (7, 5, 9), True), ("tflite", (13, 6), True)])
def test_uno_is_bit_exact_with_the_simulator(profile, units, extreme):
    ir = random_model(6, units, 4, seed=5, extreme=extreme)
    x = np.random.default_rng(1).integers(-128, 128, (3, 12, 6), dtype=np.int8)
    sim = Simulator(ir, profile).run(x)
    run = run_avr(ir, x, profile=profile)
    np.testing.assert_array_equal(run.outputs.h, sim.h)
    np.testing.assert_array_equal(run.outputs.y, sim.y)
    last = run_avr(ir, x, profile=profile, head_on_last_step=True)  # y = NULL until the end
    np.testing.assert_array_equal(last.outputs.h, sim.h)
    np.testing.assert_array_equal(last.outputs.y[:, -1], sim.y[:, -1])
    assert last.cycles_per_step < run.cycles_per_step  # the head skipped on most steps
    assert run.static_ram_bytes == 0  # weights and tables in flash; the state is the caller's
    assert 0 < run.flash_bytes < FLASH_BYTES and 0 < run.stack_bytes < RAM_BYTES // 4


def test_uno_cycles_are_exact_and_repeatable():
    ir = random_model(6, 16, 4, seed=5)
    x = np.random.default_rng(1).integers(-128, 128, (2, 5, 6), dtype=np.int8)
    first, again = run_avr(ir, x), run_avr(ir, x)
    assert first.cycles_per_step == again.cycles_per_step > 10_000
    assert first.max_cycles_per_step == again.max_cycles_per_step


def test_uno_runs_real_held_out_basicmotions_bit_exact(bm_run):
    from elman.quantize.reader import read_ir

    from elman.verify import load_verify_inputs

    ir = read_ir(bm_run / "model_int8.tflite")
    x_q = load_verify_inputs(bm_run, ir).x_q[:6]  # 6 real test sequences x 100 steps
    run = run_avr(ir, x_q)
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
