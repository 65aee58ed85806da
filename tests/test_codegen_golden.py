"""Golden generated files: the C of tiny fixed-seed models, diffed line by line.

The models are built directly from a NumPy seed (no TensorFlow), so the files
change only when elman's generator, templates, primitives or version change.
After an intended change, refresh them and review the diff:

    ELMAN_REFRESH_GOLDEN=1 .venv/bin/pytest tests/test_codegen_golden.py
    git diff tests/golden/codegen
"""

import difflib
import os
from pathlib import Path

import pytest
from elman.firmware_codegen.generate import generate_c, generate_example
from elman.layers.random_model import random_model

GOLDEN = Path(__file__).parent / "golden" / "codegen"
REFRESH = os.environ.get("ELMAN_REFRESH_GOLDEN") == "1"

CASES = {
    "sensor_tflm": (dict(input_dim=3, layer_units=4, output_dim=2, seed=2024, window_steps=100),
                    "tiny", "tflm"),
    "sensor_tflite": (dict(input_dim=3, layer_units=4, output_dim=2, seed=2024), "tiny",
                      "tflite"),
    "stacked_tflm": (dict(input_dim=3, layer_units=(4, 5, 3), output_dim=2, seed=11,
                          every_step=True, activation="softmax"), "deep", "tflm"),
    "text_tflm": (dict(input_dim=2, layer_units=3, output_dim=5, vocab_size=5, seed=7,
                       labels=("a", "\"", "\\", "\n", "é")), "chars", "tflm"),
}


def _generate(case: str) -> dict[str, str]:
    kwargs, prefix, profile = CASES[case]
    ir = random_model(**kwargs)
    files = generate_c(ir, prefix=prefix, profile=profile)
    files.update(generate_example(ir, prefix=prefix, profile=profile))
    return files


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_files_match_golden(case):
    files = _generate(case)
    folder = GOLDEN / case
    if REFRESH:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
    on_disk = sorted(p.name for p in folder.iterdir())
    assert on_disk == sorted(files), "file set differs from the golden one"
    for name, text in files.items():
        want = (folder / name).read_text(encoding="utf-8")
        if text != want:
            diff = "".join(list(difflib.unified_diff(
                want.splitlines(keepends=True), text.splitlines(keepends=True),
                f"golden/{case}/{name}", f"generated/{name}"))[:60])
            pytest.fail(f"{name} differs from its golden file (refresh: see the module "
                        f"docstring):\n{diff}")


def test_golden_text_model_escapes_labels():
    text = (GOLDEN / "text_tflm" / "chars_model.c").read_text(encoding="utf-8")
    assert r'"a", "\"", "\\", "\012", "\303\251",' in text
