"""Standard file names inside a run directory.

Every stage reads and writes these names in one directory, so a user types
``elman train --data sensor:basicmotions runs/bm`` and then
``elman quantize runs/bm``, ``elman codegen runs/bm``, ``elman verify runs/bm``.
"""

from __future__ import annotations

from pathlib import Path

from elman.errors import ElmanError

MODEL_KERAS = "model.keras"
DATA_SPEC = "data_spec.json"
TRAIN_REPORT = "train_report.json"
TRAIN_CURVES_PNG = "train_curves.png"
GRAD_DISTANCE_PNG = "grad_vs_distance.png"
MODEL_TFLITE = "model_int8.tflite"
QUANT_REPORT = "quant_report.json"
VERIFY_REPORT = "verify_report.json"
CODE_DIR = "c"
MCU_REPORT = "mcu_report.json"
REPORT_HTML = "report.html"

_PRODUCER = {
    MODEL_KERAS: "elman train",
    DATA_SPEC: "elman train",
    TRAIN_REPORT: "elman train",
    MODEL_TFLITE: "elman quantize",
    QUANT_REPORT: "elman quantize",
    VERIFY_REPORT: "elman verify",
    CODE_DIR: "elman codegen",
    MCU_REPORT: "elman mcu",
}


def require(run_dir: Path | str, name: str) -> Path:
    """Return ``run_dir/name``, or raise a clear error saying which stage makes it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ElmanError(f"run directory {run_dir} does not exist")
    path = run_dir / name
    if not path.exists():
        producer = _PRODUCER.get(name, "an earlier stage")
        raise ElmanError(f"{path} is missing: run `{producer} {run_dir}` first")
    return path
