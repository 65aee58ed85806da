"""What ``elman codegen --example`` / ``--package`` prints after the paths: how to build and
run each thing it wrote, as commands to paste (paths as written, shell-quoted)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from elman.firmware_codegen.packages import package_dir


def how_to_build(target: Path, prefix: str, written: Sequence[Path],
                 packages: Sequence[str] = ()) -> list[str]:
    """Lines of text: for each file or folder among ``written``, what it is and the command
    that builds and runs it."""
    def q(path: Path) -> str:
        return shlex.quote(str(path))

    names = {p.relative_to(target).as_posix() for p in written}
    c = lambda suffix: target / f"{prefix}{suffix}"  # noqa: E731
    lines = ["", "how to use them:",
             f"  {c('_model.h')}  the API: sizes, window, labels, version as macros; "
             "every function documented",
             f"  {c('_model.c')} (+ {c('_weights.h')})  the integer step: add it to your "
             "firmware's build",
             f"  {c('_io.c')}  optional float helpers (input quantization, softmax"
             f"{', classify' if _has(target, prefix, '_classify(') else ''}): needs libm",
             f"      cc -std=c99 -O2 -c {q(c('_model.c'))} {q(c('_io.c'))}"]
    if f"{prefix}_example.c" in names:
        exe = shlex.quote(f"./{prefix}_example")
        lines += [
            f"  {c('_example.c')}  self-check on this machine: prints ok and exits 0 when the "
            "C computes what the simulator computed",
            f"      cc -std=c99 -O2 -I {q(target)} {q(c('_example.c'))} {q(c('_model.c'))} "
            f"-o {exe} && {exe}"]
    qemu = target / f"{prefix}_qemu"
    if f"{prefix}_qemu/main.c" in names:
        lines += [
            f"  {qemu}/  firmware for QEMU's mps2-an386 (Cortex-M4) over real held-out samples; "
            "its last line is PASS or FAIL (n mismatching values)",
            f"      make -C {q(qemu)} run      "
            "(needs gcc-arm-none-eabi and qemu-system-arm)"]
    for package in dict.fromkeys(packages):
        folder = target / package_dir(prefix, package)
        lines += PACKAGE_LINES[package](folder, prefix, q)
    return lines


def _has(target: Path, prefix: str, text: str) -> bool:
    header = target / f"{prefix}_model.h"
    return header.exists() and text in header.read_text(encoding="utf-8")


def _cmake(folder: Path, prefix: str, q) -> list[str]:
    build = folder / "build"
    return [
        f"  {folder}/  CMake library `{prefix}` (add_subdirectory + target_link_libraries)",
        f"      cmake -S {q(folder)} -B {q(build)} && cmake --build {q(build)} && "
        f"{q(build / f'{prefix}_example')}",
        f"      cmake -S {q(folder)} -B {q(folder / 'build-m4')} --toolchain "
        f"{q(folder / 'cmake' / 'arm-none-eabi-cortex-m4.cmake')} && "
        f"cmake --build {q(folder / 'build-m4')}     (Cortex-M4 image)"]


def _zephyr(folder: Path, prefix: str, q) -> list[str]:
    return [
        f"  {folder}/  Zephyr module: in your application, CONFIG_{prefix.upper()}_MODEL=y and",
        f"      west build -b <board> <app> -- -DZEPHYR_EXTRA_MODULES={q(folder.resolve())}"]


def _arduino(folder: Path, prefix: str, q) -> list[str]:
    sketch = folder / "examples" / f"{prefix}_self_check"
    return [
        f"  {folder}/  Arduino library: copy it into ~/Arduino/libraries/; the example sketch "
        "prints PASS or FAIL",
        f"      arduino-cli compile --fqbn arduino:avr:uno --library {q(folder)} {q(sketch)}"]


def _platformio(folder: Path, prefix: str, q) -> list[str]:
    return [
        f"  {folder}/  PlatformIO library (library.json): in platformio.ini,",
        f"      lib_deps = symlink://{folder.resolve()}"]


PACKAGE_LINES = {"cmake": _cmake, "zephyr": _zephyr, "arduino": _arduino,
                 "platformio": _platformio}
