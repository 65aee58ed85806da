"""How far the int8 state may drift from the float model: the quantization's own measure.

``elman quantize`` runs the int8 model (LiteRT) and the float model on the
held-out data and records the mean ``|h_int8 - h_float|`` in
``quant_report.json`` (per test sequence for classifiers). That is what this
quantization costs. ``elman verify`` measures the same error on the same data
with the simulator of each profile; when it is more than :data:`FACTOR` times
the recorded one (and above half an LSB), something changed after quantize —
a hand-edited normalization in ``data_spec.json``, a retrained ``model.keras``,
other data — and verify fails instead of printing a number.

The recorded value applies only to the model it was measured on: the report's
SHA-256 must be the ``.tflite``'s. Classifiers compare the same test sequences
(``--limit`` takes the first ones); text models the mean over the stream (a
prefix of the stream has a smaller error, the state starting from zero).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from elman.quantize.ir import STATE_SCALE, QuantizedModel

from elman import rundir

FACTOR = 3.0  # the profiles and the float references differ by a few percent, not 3x
# the floor of the bound: half an LSB of the state (below that, no ratio means anything)


def expected_hidden_error(run_dir: Path, ir: QuantizedModel, sequences: int) -> dict[str, Any]:
    """The mean hidden-state error quantize measured on the first ``sequences`` held-out
    sequences (text: the stream), or why there is none (``expected`` is then None)."""
    path = Path(run_dir) / rundir.QUANT_REPORT
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        measured = report["evaluation"]["hidden_error"]
        sha = report["model"]["sha256"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return {"expected": None, "note": f"{rundir.QUANT_REPORT} is missing or unreadable"}
    if sha != ir.source_sha256:
        return {"expected": None,
                "note": f"{rundir.QUANT_REPORT} describes another model (SHA-256 {sha[:12]}...)"}
    per_sequence = (measured.get("by_sequence") or {}).get("mean")
    if ir.task == "classification" and per_sequence and len(per_sequence) >= sequences:
        chosen = per_sequence[:sequences]
        return {"expected": sum(chosen) / len(chosen),
                "note": f"quantize (LiteRT), the same {sequences} test sequences"}
    return {"expected": float(measured["mean"]), "note": "quantize (LiteRT), held-out data"}


def check_hidden_error(float_vs_int8: list[dict[str, Any]], expectation: dict[str, Any],
                       state_scale: float = STATE_SCALE) -> dict[str, Any]:
    """``expectation`` with the bound, each profile's measured error and ``ok``
    (None when there is nothing to compare with). ``state_scale``: the state's LSB
    (1/128, or 1/32768 for the int16 state); the bound is never below half of it."""
    out = dict(expectation, factor=FACTOR)
    measured = {f["profile"]: f["metrics"]["hidden_abs_error_mean"] for f in float_vs_int8}
    out["measured"] = measured
    expected = expectation["expected"]
    if expected is None or not measured:
        out.update(bound=None, ok=None)
        return out
    bound = max(FACTOR * expected, state_scale / 2)
    out.update(bound=bound, ok=all(m <= bound for m in measured.values()))
    return out


def hidden_error_message(check: dict[str, Any]) -> str:
    worst, value = max(check["measured"].items(), key=lambda kv: kv[1])
    return (f"the quantized state is {value / check['expected']:.1f}x as far from the float model "
            f"as quantize measured (mean |h_quantized - h_float| {value:.4g} with profile {worst}, "
            f"expected {check['expected']:.4g}, bound {check['bound']:.4g}): the model, "
            f"{rundir.DATA_SPEC} or the data changed after `elman quantize`")
