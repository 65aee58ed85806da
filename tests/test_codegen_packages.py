"""`elman codegen --package cmake|zephyr|arduino|platformio`: each library built by the real
tools this machine has (Debian's cmake, gcc, arm-none-eabi-gcc, avr-gcc), its manifests
checked against what their build systems require."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from elman.firmware_codegen.generate import example_values, generate_c
from elman.firmware_codegen.packages import PACKAGE_NAMES, package_files
from elman.layers.random_model import random_model
from elman.quantize.testing import random_step_tflite
from elman.runtime.simulator import Simulator
from typer.testing import CliRunner

from elman import __version__
from elman.cli import app

needs_cmake = pytest.mark.skipif(shutil.which("cmake") is None,
                                 reason="needs cmake (apt-get install -y cmake)")
needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason="needs arm-none-eabi-gcc")
needs_avr = pytest.mark.skipif(shutil.which("avr-gcc") is None,
                               reason="needs avr-gcc (apt-get install -y gcc-avr avr-libc)")

# What a firmware project's own code does with the library: the float entry point and names.
APP_MAIN = r"""
#include <stdio.h>
#include "gest_model.h"

int main(void)
{
    static float window[GEST_WINDOW_STEPS * GEST_INPUT_DIM];
    float p[GEST_OUTPUT_DIM];
    size_t i;
    int label;
    for (i = 0; i < GEST_WINDOW_STEPS * GEST_INPUT_DIM; ++i) {
        window[i] = (float)(i % 7u) * 0.5f - 1.0f;
    }
    label = gest_classify(window, GEST_WINDOW_STEPS, p);
    printf("%d %s %s\n", label, gest_labels[label], GEST_VERSION);
    return 0;
}
"""


@pytest.fixture(scope="module")
def model():
    return random_model(4, (8, 6), 3, seed=4, window_steps=20, labels=("idle", "wave", "tap"))


@pytest.fixture(scope="module")
def written(model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packages")
    files = package_files(model, generate_c(model, prefix="gest"), example_values(model),
                          PACKAGE_NAMES, prefix="gest", profile="tflm")
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text, encoding="utf-8")
    return out


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _expected_label(model) -> int:
    """What APP_MAIN's window classifies as, computed by the simulator."""
    raw = ((np.arange(20 * 4) % 7) * 0.5 - 1.0).astype(np.float32).reshape(1, 20, 4)
    normalized = ((raw.astype(np.float64) - model.norm_mean) / model.norm_std).astype(np.float32)
    y = Simulator(model, "tflm").run(model.input_quant.quantize(normalized)).y[0, -1]
    return int(np.argmax(y))


@needs_cmake
def test_cmake_package_builds_and_self_checks_on_the_host(written, model, tmp_path):
    package = written / "gest_cmake"
    _run(["cmake", "-S", str(package), "-B", str(tmp_path / "build"), "-Werror=dev"])
    _run(["cmake", "--build", str(tmp_path / "build")])
    assert "gest: ok (0 mismatching values)" in _run([str(tmp_path / "build" / "gest_example")])
    assert "100% tests passed" in _run(["ctest", "--test-dir", str(tmp_path / "build")])
    # a firmware project consumes it: add_subdirectory + target_link_libraries, nothing else
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "main.c").write_text(APP_MAIN)
    (app_dir / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.13)\nproject(app C)\n"
        f"add_subdirectory({package.as_posix()} gest)\n"
        "add_executable(app main.c)\ntarget_link_libraries(app PRIVATE elman::gest)\n")
    _run(["cmake", "-S", str(app_dir), "-B", str(app_dir / "build")])
    _run(["cmake", "--build", str(app_dir / "build")])
    assert not (app_dir / "build" / "gest" / "gest_example").exists()  # not top level: no example
    label, name, version = _run([str(app_dir / "build" / "app")]).split()
    assert int(label) == _expected_label(model) and name == model.labels[int(label)]
    assert version == __version__


@needs_cmake
@needs_arm
def test_cmake_package_cross_builds_a_cortex_m4_image(written, tmp_path):
    package = written / "gest_cmake"
    toolchain = package / "cmake" / "arm-none-eabi-cortex-m4.cmake"
    for build_type in ("Release", "Debug"):  # Debug is -O0: the portable kernel path
        build = tmp_path / build_type
        _run(["cmake", "-S", str(package), "-B", str(build), "--toolchain", str(toolchain),
              f"-DCMAKE_BUILD_TYPE={build_type}"])
        _run(["cmake", "--build", str(build)])
        elf = build / "gest_example.elf"
        header = _run(["arm-none-eabi-readelf", "-h", str(elf)])
        assert "ARM" in header and "EXEC" in header
        assert "gest_step" in _run(["arm-none-eabi-nm", str(elf)])


def test_zephyr_module_layout(written):
    """As Zephyr documents modules: zephyr/module.yml names the CMake folder and the
    Kconfig file, both there; the CMakeLists builds the sources.cmake list with Zephyr's
    library functions only when CONFIG_GEST_MODEL is set."""
    import yaml

    module = written / "gest_zephyr"
    meta = yaml.safe_load((module / "zephyr" / "module.yml").read_text())
    assert meta == {"name": "gest", "build": {"cmake": ".", "kconfig": "Kconfig"}}
    assert (module / meta["build"]["cmake"] / "CMakeLists.txt").is_file()
    cmake = (module / "CMakeLists.txt").read_text()
    assert re.search(r"^if\(CONFIG_GEST_MODEL\)$", cmake, re.M)
    assert "zephyr_library_named(gest)" in cmake
    assert "zephyr_library_sources(${GEST_SOURCES})" in cmake
    assert "zephyr_include_directories(${GEST_INCLUDE_DIR})" in cmake
    kconfig = (module / meta["build"]["kconfig"]).read_text()
    configs = re.findall(r"^config (\w+)$", kconfig, re.M)
    assert configs == ["GEST_MODEL", "GEST_MODEL_FLOAT_HELPERS"]
    assert "\tdepends on GEST_MODEL\n" in kconfig and "\tbool " in kconfig


def test_zephyr_kconfig_parses_with_kconfiglib(written, tmp_path):
    """Zephyr's configuration system is Kconfiglib: the module's Kconfig loads in it and the
    two options behave (the float helpers depend on the model)."""
    kconfiglib = pytest.importorskip("kconfiglib", reason="needs kconfiglib (pip)")
    top = tmp_path / "Kconfig"
    top.write_text(f'mainmenu "app"\nsource "{written / "gest_zephyr" / "Kconfig"}"\n')
    kconf = kconfiglib.Kconfig(str(top), warn_to_stderr=False)
    assert kconf.warnings == []
    model, helpers = kconf.syms["GEST_MODEL"], kconf.syms["GEST_MODEL_FLOAT_HELPERS"]
    assert helpers.str_value == "n"  # off while the model is off
    model.set_value("y")
    assert helpers.str_value == "y"  # default y once the model is on


@needs_cmake
def test_zephyr_module_sources_build_with_the_same_cmake_path(written, model, tmp_path):
    """The module's sources.cmake (the list zephyr_library_sources gets) built as a library."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "main.c").write_text(APP_MAIN)
    (app_dir / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.13)\nproject(app C)\nset(GEST_FLOAT_HELPERS ON)\n"
        f"include({(written / 'gest_zephyr' / 'sources.cmake').as_posix()})\n"
        "add_library(gest STATIC ${GEST_SOURCES})\n"
        "target_include_directories(gest PUBLIC ${GEST_INCLUDE_DIR})\n"
        "add_executable(app main.c)\ntarget_link_libraries(app PRIVATE gest m)\n")
    _run(["cmake", "-S", str(app_dir), "-B", str(app_dir / "build")])
    _run(["cmake", "--build", str(app_dir / "build")])
    label, name, _ = _run([str(app_dir / "build" / "app")]).split()
    assert int(label) == _expected_label(model) and name == model.labels[int(label)]


ARDUINO_CATEGORIES = {"Display", "Communication", "Signal Input/Output", "Sensors",
                      "Device Control", "Timing", "Data Storage", "Data Processing", "Other"}


def test_arduino_library_properties(written):
    """library.properties as the Arduino library specification (1.5) requires it."""
    library = written / "gest_library"
    props = dict(line.split("=", 1) for line in
                 (library / "library.properties").read_text().splitlines() if line)
    required = {"name", "version", "author", "maintainer", "sentence", "paragraph", "category",
                "url", "architectures"}
    assert required <= set(props)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 _.\-]*", props["name"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", props["version"]) and props["version"] == __version__
    assert props["category"] in ARDUINO_CATEGORIES and props["architectures"] == "*"
    for header in props["includes"].split(","):
        assert (library / "src" / header.strip()).is_file()
    sketch = library / "examples" / "gest_self_check" / "gest_self_check.ino"
    assert sketch.is_file() and "void setup()" in sketch.read_text()
    assert not (library / "src" / "gest_example.c").exists()  # no second main() in src/


def test_platformio_library_json(written):
    """library.json beside the Arduino layout, with the fields PlatformIO's manifest reads."""
    library = written / "gest_library"
    manifest = json.loads((library / "library.json").read_text())
    assert manifest["name"] == "gest" and manifest["version"] == __version__
    assert manifest["frameworks"] == "*" and manifest["platforms"] == "*"
    assert (library / manifest["build"]["srcDir"] / manifest["headers"]).is_file()
    assert all(list(library.glob(pattern)) for pattern in manifest["examples"])
    assert isinstance(manifest["keywords"], list) and manifest["description"]


LIBRARY_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-Os", "-c")


@needs_avr
def test_arduino_library_sources_compile_for_the_uno(written, tmp_path):
    """src/ as the Arduino IDE compiles it for an Uno (avr-gcc, ATmega328P, 16-bit int)."""
    for unit in ("gest_model.c", "gest_io.c"):
        _run(["avr-gcc", "-mmcu=atmega328p", *LIBRARY_FLAGS,
              str(written / "gest_library" / "src" / unit), "-o", str(tmp_path / f"{unit}.o")])


@needs_arm
@pytest.mark.parametrize("cpu", ["cortex-m0plus", "cortex-m4"])
def test_arduino_library_sources_compile_for_arm_boards(written, tmp_path, cpu):
    """src/ for an ARM board (Arduino Zero/MKR: Cortex-M0+; Nano 33 BLE, Portenta: M4)."""
    for unit in ("gest_model.c", "gest_io.c"):
        _run(["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", *LIBRARY_FLAGS,
              str(written / "gest_library" / "src" / unit), "-o", str(tmp_path / f"{unit}.o")])


def test_codegen_cli_writes_packages_and_says_how_to_build_them(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model_int8.tflite").write_bytes(random_step_tflite(3, 12, 4, seed=4))
    result = CliRunner().invoke(app, ["codegen", str(run), "--package", "cmake", "--package",
                                      "zephyr", "--package", "arduino", "--package",
                                      "platformio"])
    assert result.exit_code == 0, result.output
    c = run / "c"
    for path in ("elman_cmake/CMakeLists.txt", "elman_zephyr/zephyr/module.yml",
                 "elman_library/library.properties", "elman_library/library.json",
                 "elman_library/src/elman_model.h", "elman_zephyr/include/elman_model.h"):
        assert (c / path).is_file(), path
    assert (c / "elman_cmake/include/elman_model.h").read_text() == (
        c / "elman_model.h").read_text()
    out = result.output
    assert "cmake -S" in out and "CONFIG_ELMAN_MODEL=y" in out and "lib_deps" in out
    bad = CliRunner().invoke(app, ["codegen", str(run), "--package", "make"])
    assert bad.exit_code == 2 and "make" in bad.output


def _pio() -> str | None:
    """PlatformIO's `pio`: $ELMAN_PIO or on PATH. It is on PyPI but pins its own click, so it
    lives in an environment of its own (python3 -m venv pio && pio/bin/pip install platformio)."""
    import os

    found = os.environ.get("ELMAN_PIO") or shutil.which("pio")
    return found if found and Path(found).exists() else None


@pytest.mark.skipif(_pio() is None, reason="needs PlatformIO's pio (pip install platformio in "
                    "its own environment; set ELMAN_PIO to it)")
@pytest.mark.parametrize("manifest", ["library.json", "library.properties"])
def test_platformio_packs_the_library(written, tmp_path, manifest):
    """`pio pkg pack` (offline) validates the manifest with PlatformIO's own schema: for
    library.json, and for the Arduino layout's library.properties, which PlatformIO reads too."""
    import os

    library = tmp_path / "library"
    shutil.copytree(written / "gest_library", library)
    other = {"library.json": "library.properties", "library.properties": "library.json"}
    (library / other[manifest]).unlink()
    done = subprocess.run([_pio(), "pkg", "pack", str(library), "-o", str(tmp_path)],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "PLATFORMIO_CORE_DIR": str(tmp_path / "pio")})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / f"gest-{__version__}.tar.gz").is_file()
