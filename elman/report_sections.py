"""The sections of ``report.html``, one function per stage report.

Each function takes the stage's JSON report (or None when the stage has not
run) and returns a :class:`~elman.report_page.Section`; a missing report or a
missing field becomes a visible note, never an exception.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from elman import report_plots, rundir
from elman.errors import ElmanError
from elman.report_page import Card, Cell, Section, fmt, status_cell

Report = dict[str, Any] | None


def _missing(name: str, run_dir: Path) -> str:
    producer = rundir._PRODUCER.get(name, "an earlier stage")
    return f"{name} is missing: run `{producer} {run_dir}` to fill this section."


def build_page(run_dir: Path, reports: dict[str, Report]) -> dict[str, Any]:
    """Template context: title, subtitle, summary cards and sections."""
    train = reports.get(rundir.TRAIN_REPORT)
    quant = reports.get(rundir.QUANT_REPORT)
    verify = reports.get(rundir.VERIFY_REPORT)
    mcu = reports.get(rundir.MCU_REPORT)
    sections = [
        training_section(run_dir, train),
        quantization_section(run_dir, quant),
        task_section(run_dir, train, quant),
        verification_section(run_dir, verify),
        mcu_section(run_dir, mcu),
        files_section(run_dir),
    ]
    return {
        "title": run_dir.resolve().name,
        "subtitle": _subtitle(train),
        "cards": summary_cards(train, quant, verify, mcu),
        "sections": sections,
    }


def _subtitle(train: Report) -> str:
    if not train:
        return "no training report in this run directory"
    cfg = train.get("config", {})
    parts = [str(train.get("data", "")), str(train.get("task", ""))]
    parts += [f"{k} {cfg[k]}" for k in ("units", "epochs", "bptt", "clip", "seed") if k in cfg]
    return " · ".join(p for p in parts if p)


# ---- summary ----------------------------------------------------------------------


def summary_cards(train: Report, quant: Report, verify: Report, mcu: Report) -> list[Card]:
    cards: list[Card] = []
    for label, value in task_metrics(train, quant, verify):
        cards.append(Card(label, fmt(value)))
    if verify:
        pairs = verify_pairs(verify)
        bad = [p for p in pairs if not p["ok"]]
        cards.append(Card("bit-exact pairs", f"{len(pairs) - len(bad)} / {len(pairs)}",
                          "bad" if bad else "ok"))
    for row in mcu_rows(mcu)[:2]:
        cards.append(Card(f"flash / RAM on {row['cpu']} -{row['opt']}",
                          f"{fmt(row['flash'])} / {fmt(row['ram'])} B"))
        if row.get("instructions_per_step") is not None:
            cards.append(Card(f"instructions per step on {row['cpu']}",
                              fmt(row["instructions_per_step"])))
    return cards


def task_metrics(train: Report, quant: Report, verify: Report) -> list[tuple[str, Any]]:
    """(label, value) of the task metric for float, int8 and C, where known."""
    out: list[tuple[str, Any]] = []
    metrics = (quant or {}).get("metrics", {})
    for key, label in (("float", "float"), ("int8", "int8")):
        m = metrics.get(key, {})
        for name in ("accuracy", "perplexity", "bits_per_char"):
            if name in m:
                out.append((f"{label} {name.replace('_', ' ')}", m[name]))
    if not out and train:
        for name, value in train.get("metrics", {}).items():
            if isinstance(value, int | float):
                out.append((f"float {name.replace('_', ' ')}", value))
    return out


# ---- training ----------------------------------------------------------------------


def training_section(run_dir: Path, train: Report) -> Section:
    s = Section("training", "Training")
    if train is None:
        s.missing = _missing(rundir.TRAIN_REPORT, run_dir)
        return s
    history = train.get("history") or train.get("epochs") or []
    if history:
        epochs = [int(h.get("epoch", i + 1)) for i, h in enumerate(history)]
        series: dict[str, dict[str, list[float]]] = {}
        for key in history[0]:
            if key in ("epoch", "seconds", "time_s") or not isinstance(history[0][key],
                                                                        int | float):
                continue
            quantity = key.removeprefix("val_").removeprefix("train_")
            split = "validation" if key.startswith("val_") else "train"
            series.setdefault(quantity, {})[split] = [float(h[key]) for h in history]
        if series:
            s.figure(report_plots.training_curves(epochs, series),
                     "Training curves, per epoch.")
    else:
        s.note_missing("train_report.json has no per-epoch history.")
    curve = train.get("grad_norm_vs_distance")
    if curve:
        s.heading("Vanishing gradient")
        s.figure(report_plots.gradient_vs_distance(curve["distance"], curve["norm"]),
                 "‖∂L_T/∂h_k‖ against the distance T − k, on held-out sequences: how far back "
                 "the loss still reaches the hidden state.")
    clip = train.get("clipping")
    if clip:
        s.heading("Gradient clipping")
        norms = clip.get("grad_norms") or clip.get("grad_norm", {}).get("per_update")
        if norms:
            s.figure(report_plots.clipping(norms, clip.get("threshold")),
                     "Pre-clip global gradient norm of every update.")
        s.table(["threshold", "updates clipped"],
                [[clip.get("threshold"), _percent(clip.get("fraction_clipped"))]])
    return s


def _percent(v: float | None) -> str:
    return "—" if v is None else f"{100 * float(v):.1f} %"


# ---- quantization ------------------------------------------------------------------


def quantization_section(run_dir: Path, quant: Report) -> Section:
    s = Section("quantization", "Quantization: float vs int8")
    if quant is None:
        s.missing = _missing(rundir.QUANT_REPORT, run_dir)
        return s
    _traces(s, run_dir)
    err = quant.get("hidden_error_by_step") or quant.get("state_error")
    if err:
        steps = np.arange(1, len(err["mean"]) + 1)
        s.heading("Hidden-state error at each step position")
        s.figure(report_plots.error_by_step(steps, {"mean": err["mean"], "max": err["max"]},
                                            "step"),
                 "Mean and max |h_float − h_int8| (float units) over the held-out sequences.")
    drift = quant.get("drift")
    if drift:
        s.heading("Drift over a long stream")
        s.figure(report_plots.error_by_step(drift["steps"], {"mean": drift["mean"],
                                                             "max": drift["max"]},
                                            "step", log_x=True),
                 f"|h_float − h_int8| along one stream of {fmt(drift['steps'][-1])} steps.")
    facts = []
    for key in ("model_bytes", "state_scale", "state_zero_point"):
        if key in quant:
            facts.append([key.replace("_", " "), quant[key]])
    if facts:
        s.table(["", "value"], facts)
    return s


def _traces(s: Section, run_dir: Path) -> None:
    from elman.report_traces import hidden_traces

    s.heading("Hidden state along one held-out sequence")
    try:
        traces = hidden_traces(run_dir)
    except (ElmanError, ImportError, OSError, ValueError) as exc:
        s.note_missing(f"hidden-state traces unavailable: {exc}")
        return
    units = traces.units_to_show()
    diff = np.abs(traces.float_h - traces.int8_h)
    s.figure(report_plots.hidden_traces(traces.float_h, traces.int8_h, units),
             f"Float (Keras) and int8 (simulator, dequantized) hidden state of the "
             f"{len(units)} most active units along {traces.description}. "
             f"|difference| over all units: mean {fmt(float(diff.mean()))}, "
             f"max {fmt(float(diff.max()))}.")


# ---- the task metric ---------------------------------------------------------------


def task_section(run_dir: Path, train: Report, quant: Report) -> Section:
    s = Section("task", "Task metric")
    if train is None and quant is None:
        s.missing = _missing(rundir.TRAIN_REPORT, run_dir)
        return s
    rows = [[label, value] for label, value in task_metrics(train, quant, None)]
    if rows:
        s.table(["", "value"], rows)
    metrics = (train or {}).get("metrics", {})
    cm = metrics.get("confusion_matrix")
    if cm:
        labels = metrics.get("classes") or [str(i) for i in range(len(cm))]
        s.heading("Confusion matrix (float model, test split)")
        s.figure(report_plots.confusion_matrix(np.asarray(cm), labels),
                 "Rows: true class; columns: predicted class.")
    baseline = (train or {}).get("baseline")
    if baseline:
        s.heading("Against Kneser–Ney character n-grams")
        rows = []
        for name, b in sorted(baseline.items()):
            rows.append([name, b.get("val_perplexity"), b.get("val_bits_per_char"),
                         b.get("bytes")])
        s.table(["model", "perplexity", "bits/char", "bytes"], rows)
    return s


# ---- verification ------------------------------------------------------------------


def verify_pairs(verify: dict[str, Any]) -> list[dict[str, Any]]:
    return list(verify.get("pairs", []))


def verification_section(run_dir: Path, verify: Report) -> Section:
    s = Section("verification", "Bit-exactness")
    if verify is None:
        s.missing = _missing(rundir.VERIFY_REPORT, run_dir)
        return s
    rows, statuses = [], []
    for p in verify_pairs(verify):
        first = p.get("first_mismatch")
        rows.append([f"{p['a']} vs {p['b']}", p.get("compared"), p.get("mismatches"),
                     p.get("max_abs_diff_lsb"), status_cell(bool(p["ok"])),
                     "" if not first else _first_mismatch(first)])
        statuses.append("ok" if p["ok"] else "bad")
    s.text("Every step of every held-out sequence, every hidden unit and output, compared "
           "as int8 values.")
    s.table(["pair", "values compared", "mismatches", "max |diff| (LSB)", "status",
             "first mismatch"], rows, statuses)
    return s


def _first_mismatch(first: dict[str, Any]) -> str:
    try:
        return (f"sequence {first['sequence']}, step {first['step']}, "
                f"{first['kind']}[{first['unit']}]: {first['a']} vs {first['b']}")
    except KeyError:
        return ", ".join(f"{k} {v}" for k, v in sorted(first.items()))


# ---- microcontroller ---------------------------------------------------------------


def mcu_rows(mcu: Report) -> list[dict[str, Any]]:
    return list((mcu or {}).get("builds", []))


def mcu_section(run_dir: Path, mcu: Report) -> Section:
    s = Section("mcu", "On the microcontroller")
    if mcu is None:
        s.missing = _missing(rundir.MCU_REPORT, run_dir)
        return s
    rows = []
    for b in mcu_rows(mcu):
        rows.append([b["cpu"], b["opt"], b.get("flash"), b.get("ram"),
                     b.get("instructions_per_step"), b.get("instructions_per_mac")])
    s.table(["cpu", "opt", "flash (B)", "RAM (B)", "instructions / step",
             "instructions / MAC"], rows)
    return s


# ---- files ---------------------------------------------------------------------------


def files_section(run_dir: Path) -> Section:
    s = Section("files", "Files")
    rows = []
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            rows.append([Cell(str(rel)), path.stat().st_size])
    s.table(["file", "bytes"], rows)
    return s
