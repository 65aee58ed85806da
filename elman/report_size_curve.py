"""report.html: perplexity against bytes, pruned Kneser-Ney n-grams and the RNN.

The n-gram points come from ``train_report.json`` (``size_curve``: every order
and count cut-off, scored on the validation stream). The RNN's points come from
:data:`RNN_POINTS`: one function per point, each reading the stage reports and
returning a :class:`SizePoint` or ``None``: float32, int8 and, after ``elman quantize
--state int16``, the 16x8 model beside the int8 state's point of the same float model; a
new representation adds one function to that list. Every perplexity here is the one
validation perplexity of :mod:`elman.perplexity`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elman import report_plots
from elman.report_page import Section

Report = dict[str, Any] | None


@dataclass(frozen=True)
class SizePoint:
    label: str
    bytes: int
    perplexity: float
    size_of: str  # what the bytes count


def float_point(train: Report, quant: Report, verify: Report) -> SizePoint | None:
    metrics, model = (train or {}).get("metrics", {}), (train or {}).get("model", {})
    if "val_perplexity" not in metrics or "float32_bytes" not in model:
        return None
    return SizePoint(f"RNN float32, {model.get('units')} units", int(model["float32_bytes"]),
                     float(metrics["val_perplexity"]), "float32 parameters")


STATE_LABELS = {8: ("int8", "int8 weights and embedding, int32 biases"),
                16: ("16x8 (int16 state)", "int8 weights, int16 embedding, int64 biases")}


def quantized_point(train: Report, quant: Report, verify: Report) -> SizePoint | None:
    """The quantized model of the run (int8, or 16x8 after ``elman quantize --state int16``)."""
    ev = (quant or {}).get("evaluation", {})
    int8 = ev.get("metrics", {}).get("int8", {})
    size = (quant or {}).get("model", {}).get("parameter_bytes", {}).get("total")
    if "perplexity" not in int8 or size is None or not ev.get("whole_stream"):
        return None
    name, size_of = STATE_LABELS[int(quant.get("quantization", {}).get("state_bits", 8))]
    return SizePoint(f"RNN {name}, {quant['model'].get('units')} units", int(size),
                     float(int8["perplexity"]), f"{size_of} (LiteRT's perplexity)")


def compared_state_point(train: Report, quant: Report, verify: Report) -> SizePoint | None:
    """With ``--state int16``, the same float model with the int8 state (the quant report's
    ``state_comparison``, measured on the same stream)."""
    rows = (quant or {}).get("state_comparison", {}).get("rows", [])
    row = next((r for r in rows if r.get("state") == "int8"), None)
    if (row is None or "perplexity" not in row or "parameter_bytes" not in row
            or not row.get("whole_stream")):
        return None
    name, size_of = STATE_LABELS[8]
    return SizePoint(f"RNN {name}, {quant['model'].get('units')} units",
                     int(row["parameter_bytes"]), float(row["perplexity"]),
                     f"{size_of} (LiteRT's perplexity)")


RNN_POINTS: list[Callable[[Report, Report, Report], SizePoint | None]] = [
    float_point, compared_state_point, quantized_point]


def rnn_points(train: Report, quant: Report, verify: Report) -> list[SizePoint]:
    return [p for p in (f(train, quant, verify) for f in RNN_POINTS) if p is not None]


def smallest_ngram_at(points: list[dict], perplexity: float) -> dict | None:
    """The smallest n-gram model whose perplexity is at most ``perplexity``."""
    fits = [p for p in points if p["val_perplexity"] <= perplexity]
    return min(fits, key=lambda p: p["bytes"]) if fits else None


def size_curve_section(train: Report, quant: Report, verify: Report) -> Section | None:
    """The section, or None when the run has no n-gram curve (classification, no baseline)."""
    curve = (train or {}).get("size_curve")
    if not curve:
        return None
    s = Section("size", "Size: perplexity against bytes")
    points, frontier = curve.get("points", []), curve.get("frontier", [])
    models = rnn_points(train, quant, verify)
    s.figure(report_plots.size_curve([(p["bytes"], p["val_perplexity"]) for p in points],
                                     [(p["bytes"], p["val_perplexity"]) for p in frontier],
                                     [(m.label, m.bytes, m.perplexity) for m in models]),
             f"Validation perplexity against size: Kneser–Ney character n-grams of orders "
             f"{', '.join(str(o) for o in sorted({p['order'] for p in points}))}, pruned by "
             f"{curve.get('pruning', 'count cut-offs')}, and the RNN.")
    rows = []
    for m in models:
        ngram = smallest_ngram_at(points, m.perplexity)
        rows.append([m.label, m.perplexity, m.bytes, m.size_of,
                     "none reaches it" if ngram is None else
                     f"order {ngram['order']}, cut-off {ngram['cutoff']} "
                     f"(perplexity {ngram['val_perplexity']:.3f})",
                     None if ngram is None else ngram["bytes"],
                     None if ngram is None else round(ngram["bytes"] / m.bytes, 1)])
    s.table(["model", "perplexity", "bytes", "size of", "smallest n-gram at this perplexity",
             "its bytes", "n-gram / RNN"], rows)
    return s
