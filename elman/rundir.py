"""Standard file names inside a run directory, and which stage makes each.

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
PROVENANCE = "provenance.json"

STAGES = ("train", "quantize", "codegen", "verify", "mcu", "report")

# what each stage writes into the run directory
OUTPUTS = {
    "train": (MODEL_KERAS, DATA_SPEC, TRAIN_REPORT, TRAIN_CURVES_PNG, GRAD_DISTANCE_PNG),
    "quantize": (MODEL_TFLITE, QUANT_REPORT),
    "codegen": (CODE_DIR,),
    "verify": (VERIFY_REPORT,),
    "mcu": (MCU_REPORT,),
    "report": (REPORT_HTML,),
}
# each stage's JSON report
REPORTS = {"train": TRAIN_REPORT, "quantize": QUANT_REPORT, "verify": VERIFY_REPORT,
           "mcu": MCU_REPORT}
# the stages whose outputs are made from a stage's outputs (directly or not)
DOWNSTREAM = {
    "train": ("quantize", "codegen", "verify", "mcu", "report"),
    "quantize": ("codegen", "verify", "mcu", "report"),
    "codegen": ("report",),
    "verify": ("report",),
    "mcu": ("report",),
    "report": (),
}
PRODUCER = {name: f"elman {stage}" for stage, names in OUTPUTS.items() for name in names
            if stage != "report"}

# the command line of this process, when the ``elman`` console script started it
argv: list[str] | None = None


def require(run_dir: Path | str, name: str) -> Path:
    """Return ``run_dir/name``, or raise a clear error saying which stage makes it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ElmanError(f"run directory {run_dir} does not exist")
    path = run_dir / name
    if not path.exists():
        producer = PRODUCER.get(name, "an earlier stage")
        raise ElmanError(f"{path} is missing: run `{producer} {run_dir}` first")
    return path
