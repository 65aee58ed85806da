"""``codegen_run``: a run directory's ``model_int8.tflite`` -> C sources on disk.

Reads the IR from the ``.tflite`` (never the Keras model), renders the C with
:func:`elman.firmware_codegen.generate.generate_c` and writes the files
all-or-nothing into ``RUN_DIR/c`` (or ``out_dir``). Other prefixes' files in the
same directory are left alone, so several models can share one folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from elman.firmware_codegen.generate import generate_c
from elman.firmware_codegen.identifiers import validate_prefix
from elman.profiles import PROFILE_NAMES

from elman import provenance
from elman.errors import ElmanError
from elman.rundir import CODE_DIR, DATA_SPEC, MODEL_TFLITE


def codegen_run(
    run_dir: Path | str,
    prefix: str = "elman",
    profile: str = "tflm",
    out_dir: Path | str | None = None,
    example: bool = False,
    packages: Sequence[str] = (),
) -> list[Path]:
    """Generate the C of the run's int8 model; returns the written paths (sorted).

    ``example`` adds ``<prefix>_example.c``: a ``main`` that streams a fixed input
    sequence through the model and checks the final state and outputs against the
    simulator's (exit status 0 when equal; a self-test for a new target),
    and, when the run has its data (``data_spec.json``), ``<prefix>_qemu/``: firmware for
    QEMU's mps2-an386 (Cortex-M4) that runs a few real held-out samples and prints the
    results over semihosting and ends with PASS or FAIL (``make run``).

    ``packages`` (``cmake``, ``zephyr``, ``arduino``, ``platformio``): ready libraries next to
    the sources, each in its own folder (:mod:`elman.firmware_codegen.packages`).
    """
    from elman.firmware_codegen.packages import check_packages
    from elman.quantize.reader import read_ir

    validate_prefix(prefix)
    if profile not in PROFILE_NAMES:
        raise ElmanError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILE_NAMES)}")
    check_packages(packages)
    stage_run = provenance.begin(run_dir, "codegen", reads=[MODEL_TFLITE],
                           optional=[DATA_SPEC] if example else [])
    tflite = Path(run_dir) / MODEL_TFLITE
    ir = read_ir(tflite)
    sources = generate_c(ir, prefix=prefix, profile=profile)
    files = dict(sources)
    if example:
        from elman.firmware_codegen.generate import generate_example

        files.update(generate_example(ir, prefix=prefix, profile=profile))
        if (Path(run_dir) / DATA_SPEC).exists():  # the firmware embeds real held-out samples
            files.update(_qemu_example(run_dir, ir, files, prefix, profile))
    if packages:
        from elman.firmware_codegen.generate import example_values
        from elman.firmware_codegen.packages import package_files

        files.update(package_files(ir, sources, example_values(ir, profile), packages,
                                   prefix=prefix, profile=profile))
    target = Path(out_dir) if out_dir is not None else Path(run_dir) / CODE_DIR
    if target.exists() and not target.is_dir():
        raise ElmanError(f"output path {target} exists and is not a directory")
    with stage_run.outputs(target) as stage:
        for name in sorted(files):
            stage.write_text(name, files[name])
    return sorted(target / name for name in files)


def _qemu_example(run_dir: Path | str, ir, files: dict[str, str], prefix: str,
                  profile: str) -> dict[str, str]:
    """The mps2-an386 example firmware (``firmware_codegen.arm.example``), in its folder."""
    from elman.firmware_codegen.arm.example import example_dir, example_files, example_samples

    sources = [n for n in files if n.startswith(prefix) and n.endswith(".c")
               and not n.endswith("_example.c")]
    rendered = example_files(ir, example_samples(run_dir, ir), sources, prefix=prefix,
                             profile=profile)
    return {f"{example_dir(prefix)}/{name}": text for name, text in rendered.items()}
