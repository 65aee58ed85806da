"""``codegen_run``: a run directory's ``model_int8.tflite`` -> C sources on disk.

Reads the IR from the ``.tflite`` (never the Keras model), renders the C with
:func:`elman.firmware_codegen.generate.generate_c` and writes the files
all-or-nothing into ``RUN_DIR/c`` (or ``out_dir``). Other prefixes' files in the
same directory are left alone, so several models can share one folder.
"""

from __future__ import annotations

from pathlib import Path

from elman.firmware_codegen.generate import PROFILES, generate_c
from elman.firmware_codegen.identifiers import validate_prefix

from elman.errors import ElmanError
from elman.files import staged_outputs
from elman.rundir import CODE_DIR, MODEL_TFLITE, require


def codegen_run(
    run_dir: Path | str,
    prefix: str = "elman",
    profile: str = "tflm",
    out_dir: Path | str | None = None,
    example: bool = False,
) -> list[Path]:
    """Generate the C of the run's int8 model; returns the written paths (sorted).

    ``example`` adds ``<prefix>_example.c``: a ``main`` that streams a fixed
    input through the model and prints the outputs (a smoke test for a new target).
    """
    from elman.quantize.reader import read_ir

    validate_prefix(prefix)
    if profile not in PROFILES:
        raise ElmanError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    tflite = require(run_dir, MODEL_TFLITE)
    ir = read_ir(tflite)
    files = generate_c(ir, prefix=prefix, profile=profile)
    if example:
        from elman.firmware_codegen.generate import generate_example

        files.update(generate_example(ir, prefix=prefix, profile=profile))
    target = Path(out_dir) if out_dir is not None else Path(run_dir) / CODE_DIR
    if target.exists() and not target.is_dir():
        raise ElmanError(f"output path {target} exists and is not a directory")
    with staged_outputs(target) as stage:
        for name in sorted(files):
            stage.write_text(name, files[name])
    return sorted(target / name for name in files)
