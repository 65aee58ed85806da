"""The sections of ``report.html``, one function per stage report.

Each function takes the stage's JSON report (or None when the stage has not
run) and returns a :class:`~elman.report_page.Section`; a missing report or a
missing field becomes a visible note, never an exception. The helpers
``task_metric_rows``, ``bit_exact_pairs`` and ``mcu_rows`` are shared with the
text summary of ``elman run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from elman import report_plots, rundir
from elman.errors import ElmanError
from elman.quality_gates import Check, acceptance_checks
from elman.report_page import Card, Cell, Section, fmt, status_cell
from elman.report_size_curve import size_curve_section

Report = dict[str, Any] | None
EPOCH_BOOKKEEPING = ("epoch", "seconds", "lr_end", "updates", "grad_norm_mean",
                     "fraction_clipped", "chars")


def _missing(name: str, run_dir: Path) -> str:
    producer = rundir.PRODUCER.get(name, "an earlier stage")
    return f"{name} is missing: run `{producer} {run_dir}` to fill this section."


def build_page(run_dir: Path, reports: dict[str, Report]) -> dict[str, Any]:
    """Template context: title, subtitle, summary cards and sections."""
    train = reports.get(rundir.TRAIN_REPORT)
    quant = reports.get(rundir.QUANT_REPORT)
    verify = reports.get(rundir.VERIFY_REPORT)
    mcu = reports.get(rundir.MCU_REPORT)
    checks = acceptance_checks(train, quant, verify, bit_exact_pairs(verify, mcu))
    return {
        "title": run_dir.resolve().name,
        "subtitle": _subtitle(train),
        "cards": check_cards(checks) + summary_cards(train, quant, verify, mcu),
        "sections": [
            training_section(run_dir, train),
            quantization_section(run_dir, quant),
            task_section(run_dir, train, quant, verify, checks),
            *filter(None, [size_curve_section(train, quant, verify)]),
            verification_section(run_dir, verify, mcu),
            mcu_section(run_dir, mcu),
            files_section(run_dir),
        ],
    }


def _subtitle(train: Report) -> str:
    if not train:
        return "no training report in this run directory"
    cfg = train.get("config", {})
    parts = [str(train.get("data", "")), str(train.get("task", "")).replace("_", " ")]
    parts += [f"{k} {cfg[k]}" for k in ("units", "embedding", "epochs", "batch", "bptt", "clip",
                                        "seed") if cfg.get(k) not in (None, 0) or k == "clip"]
    return " · ".join(p for p in parts if p)


# ---- summary ----------------------------------------------------------------------


def check_cards(checks: list[Check]) -> list[Card]:
    """One card per acceptance check, first on the page: a failed one is never hidden."""
    return [Card(c.name, c.status, "ok" if c.met else "bad") for c in checks]


def summary_cards(train: Report, quant: Report, verify: Report, mcu: Report) -> list[Card]:
    cards: list[Card] = []
    header, rows = task_metric_rows(train, quant, verify)
    if rows:
        metric, *values = rows[0][: len(header) - 1]
        for column, value in zip(header[1:], values, strict=False):
            if value is not None:
                bad = isinstance(value, str) and value.startswith("not ")
                cards.append(Card(f"{metric}, {column}", fmt(value), "bad" if bad else ""))
    pairs = bit_exact_pairs(verify, mcu)
    if pairs:
        bad = sum(not p["ok"] for p in pairs)
        cards.append(Card("pairs bit-exact", f"{len(pairs) - bad} / {len(pairs)}",
                          "bad" if bad else "ok"))
    seen = set()
    for b in mcu_rows(mcu):
        if b["cpu"] in seen:
            continue
        seen.add(b["cpu"])
        cards.append(Card(f"{b['cpu']} -{b['opt']}: flash / RAM+stack",
                          f"{fmt(b['flash'])} / {fmt(b.get('ram_with_stack', b['ram']))} B"))
        cards.append(Card(f"{b['cpu']} -{b['opt']}: instructions / step",
                          fmt(b["instructions_per_step"])))
    return cards


def _metric_value(name: str, value: Any) -> Any:
    """Accuracies with three decimals (1.000, 0.975); other metrics as numbers."""
    if name.endswith("accuracy") and isinstance(value, int | float):
        return f"{value:.3f}"
    return value


def _task_metric_names(task: str | None) -> tuple[str, ...]:
    if task == "language_model":
        return ("perplexity", "bits_per_char")
    # per-step classifiers (streaming): per-step accuracy and the switch delay in steps
    return ("accuracy", "per_step_accuracy", "switch_delay_median")


def task_metric_rows(train: Report, quant: Report, verify: Report
                     ) -> tuple[list[str], list[list[Any]]]:
    """The task metric of float, int8 and C, each row on one stated set of held-out data.

    The C's metric is the simulator's wherever the pair "simulator vs generated C"
    of that profile is bit-exact on the same data (it then computes the same logits).
    """
    header = ["metric", "float", "int8", "C", "measured on"]
    rows: list[list[Any]] = []
    task = (train or quant or (verify or {}).get("model") or {}).get("task")
    float_vs_int8 = (verify or {}).get("float_vs_int8") or []
    if isinstance(float_vs_int8, dict):  # one profile (format 1) or a list, one per profile
        float_vs_int8 = [float_vs_int8]
    for fl in float_vs_int8:
        profile = fl["profile"]
        c_pairs = [p for p in verify.get("pairs", [])
                   if p.get("profile") == profile and "generated C" in p["b"]]
        c_ok = bool(c_pairs) and all(p["ok"] for p in c_pairs)
        for m in _task_metric_names(task):
            f, q = fl["metrics"].get(f"float_{m}"), fl["metrics"].get(f"int8_{m}")
            if f is None:
                continue
            c = q if c_ok else ("not bit-exact" if c_pairs else "not verified")
            f, q = _metric_value(m, f), _metric_value(m, q)
            c = _metric_value(m, c)
            rows.append([f"{m.replace('_', ' ')} [{profile}]", f, q, c,
                         f"verify: {verify['data']['description']}; int8 = simulator "
                         f"({profile}), C = its bit-exact generated C"])
    ev = (quant or {}).get("evaluation")
    if ev:
        where = (f"{ev.get('sequences', '?')} {ev.get('split', '')} sequences"
                 if "sequences" in ev else f"{fmt(ev.get('stream_steps'))} {ev.get('split', '')} "
                 "characters")
        for m in _task_metric_names(task):
            f = ev["metrics"].get("float", {}).get(m)
            q = ev["metrics"].get("int8", {}).get(m)
            if f is not None:
                rows.append([f"{m.replace('_', ' ')} [LiteRT]", _metric_value(m, f),
                             _metric_value(m, q), None,
                             f"quantize: {where}; int8 = LiteRT BUILTIN_REF (tflite)"])
    if not rows and train:
        metrics = train.get("metrics", {})
        for key in ("test_per_step_accuracy", "test_accuracy", "val_perplexity",
                    "val_bits_per_char"):
            if key == "test_accuracy" and "test_per_step_accuracy" in metrics:
                continue  # a per-step classifier's accuracy is its per-step accuracy
            if key in metrics:
                name = key.split("_", 1)[1].replace("_", " ")
                rows.append([name, _metric_value(name, metrics[key]), None, None,
                             "train: held-out split"])
    return header, rows


def bit_exact_pairs(verify: Report, mcu: Report) -> list[dict[str, Any]]:
    """Every pair claimed bit-exact: verify's pairs, then each emulated Cortex-M build."""
    pairs = []
    for p in (verify or {}).get("pairs", []):
        pairs.append({**p, "data": verify["data"]["description"]})
    for b in mcu_rows(mcu):
        if "comparison" in b:
            pairs.append({**b["comparison"], "profile": b.get("profile"),
                          "data": mcu.get("data", {}).get("description", "")})
    return pairs


def mcu_rows(mcu: Report) -> list[dict[str, Any]]:
    return list((mcu or {}).get("builds", []))


# ---- training ----------------------------------------------------------------------


def training_section(run_dir: Path, train: Report) -> Section:
    s = Section("training", "Training")
    if train is None:
        s.missing = _missing(rundir.TRAIN_REPORT, run_dir)
        return s
    for warning in train.get("warnings") or []:
        s.note_missing(f"Warning: {warning}.")
    history = train.get("epochs") or []
    if history:
        epochs, series = _epoch_series(history)
        s.figure(report_plots.training_curves(epochs, series),
                 f"Training curves per epoch ({', '.join(series)}); training stopped by "
                 f"{train.get('stop_reason', 'the epoch count')}.")
    else:
        s.note_missing("train_report.json has no per-epoch history.")
    _clipping(s, train.get("clipping") or {}, history)
    curve = train.get("grad_norm_vs_distance") or {}
    s.heading("Vanishing gradient")
    if curve.get("distance"):
        decay = curve.get("decay_per_step")
        s.figure(report_plots.gradient_vs_distance(curve["distance"], curve["mean_norm"]),
                 "The vanishing-gradient curve: mean ‖∂L_T/∂h_k‖ against the distance T − k "
                 f"over {curve.get('sequences')} held-out sequences: how far back the loss "
                 "still reaches the hidden state"
                 + (f" (about ×{decay:.3f} per step)." if decay else "."))
    else:
        s.note_missing("no gradient-vs-distance curve (trained with diagnostics off).")
    return s


def _epoch_series(history: list[dict[str, Any]]) -> tuple[list[int], dict]:
    epochs = [int(h.get("epoch", i + 1)) for i, h in enumerate(history)]
    series: dict[str, dict[str, list[float]]] = {}
    for key, value in history[0].items():
        if key in EPOCH_BOOKKEEPING or not isinstance(value, int | float):
            continue
        split, _, quantity = key.partition("_")
        if split not in ("train", "val", "test"):
            split, quantity = "", key
        label = {"val": "validation"}.get(split, split) or quantity
        series.setdefault(quantity.replace("_", " "), {})[label] = [
            float(h[key]) for h in history if key in h]
    return epochs, series


def _clipping(s: Section, clip: dict[str, Any], history: list[dict[str, Any]]) -> None:
    s.heading("Gradient clipping")
    threshold = clip.get("threshold")
    norms = clip.get("grad_norms")
    if norms:
        s.figure(report_plots.clipping(norms, threshold),
                 "Pre-clip global gradient norm of every update.")
    elif history and "grad_norm_mean" in history[0]:
        s.figure(report_plots.clipping_by_epoch(
            [h["epoch"] for h in history], [h["grad_norm_mean"] for h in history],
            [h["fraction_clipped"] for h in history], threshold),
            "Mean pre-clip global gradient norm per epoch, and the share of updates clipped.")
    stats = clip.get("grad_norm")
    if stats is None:
        s.note_missing("gradient norms were not recorded (trained with diagnostics off).")
        return
    s.table(["threshold", "updates", "clipped", "min ‖g‖", "median", "p90", "max", "first",
             "last"],
            [[threshold or "off", clip.get("updates"),
              _percent(clip.get("fraction_clipped")),
              *(stats.get(k) for k in ("min", "median", "p90", "max", "first", "last"))]])


def _percent(v: float | None) -> str:
    return "—" if v is None else f"{100 * float(v):.1f} %"


# ---- quantization ------------------------------------------------------------------


def quantization_section(run_dir: Path, quant: Report) -> Section:
    bits = ((quant or {}).get("quantization") or {}).get("state_bits", 8)
    s = Section("quantization", "Quantization: float vs int8" if bits == 8 else
                "Quantization: float vs 16x8 (int16 state)")
    if quant is None:
        s.missing = _missing(rundir.QUANT_REPORT, run_dir)
        return s
    ev = quant.get("evaluation", {})
    keras_model = quant.get("keras_model") or {}
    if keras_model.get("layers"):
        where = "every step" if keras_model.get("head_steps") == "every" else "the last step"
        s.text("Keras model: " + " → ".join(keras_model["layers"]) + f"; head at {where}, "
               f"{keras_model.get('head_activation', 'linear')}.")
        for note in keras_model.get("notes", []):
            s.text(f"Note: {note}.")
    traces = _traces(s, run_dir)
    err = ev.get("hidden_error", {})
    if err.get("by_step"):
        by = err["by_step"]
        s.heading("Hidden-state error at each step position")
        s.figure(report_plots.error_by_step(np.arange(1, len(by["mean"]) + 1),
                                            {"mean": by["mean"], "max": by["max"]}, "step"),
                 f"Mean and max |h_float − h_int{bits}| (float units; 1 LSB = "
                 f"1/{2 ** (bits - 1)}) at each step, LiteRT int{bits} vs float, "
                 f"{by.get('note', 'over the held-out sequences')}.")
    _drift(s, ev.get("drift"), traces)
    if quant.get("state_comparison"):
        _state_comparison(s, quant["state_comparison"])
    q = quant.get("quantization", {})
    model = quant.get("model", {})
    rows = []
    for name in ("input", "state", "fc_x_output", "fc_h_output", "add_output", "output"):
        if name in q:
            rows.append([name.replace("_", " "), Cell(f"{q[name]['scale']:.8g}", "num"),
                         q[name]["zero_point"]])
    if rows:
        s.heading("Quantization parameters (as stored in the .tflite)")
        s.table(["tensor", "scale", "zero point"], rows)
    if model:
        # the parts as the quant report names them (their widths follow the state: 16x8
        # stores int64 biases and an int16 embedding)
        parts = {k: v for k, v in model.get("parameter_bytes", {}).items() if k != "total"}
        s.table(["units", "MACs / step", ".tflite bytes", *(k.replace("_", " ") for k in parts)],
                [[model.get("units"), model.get("macs_per_step"), model.get("tflite_bytes"),
                  *parts.values()]])
    acc = ev.get("acceptance")
    if acc:
        s.text(f"Acceptance: {acc['criterion']}: {'met' if acc['met'] else 'NOT met'}.")
    return s


def _state_comparison(s: Section, comparison: dict[str, Any]) -> None:
    from elman.quantize.state_comparison import ratio_line, table_rows

    s.heading("int8 vs int16 state")
    header, rows = table_rows(comparison)
    s.table(header, [[Cell(c, "num") if i else c for i, c in enumerate(r)] for r in rows])
    s.text(f"{ratio_line(comparison)}; {comparison.get('note', '')}.")
    curves = {f"{r['state']} max": r["by_step"]["max"] for r in comparison["rows"]}
    curves.update({f"{r['state']} mean": r["by_step"]["mean"] for r in comparison["rows"]})
    steps = max(len(v) for v in curves.values())
    s.figure(report_plots.error_by_step(np.arange(1, steps + 1), curves, "step"),
             "Mean and max |h_float − h_quantized| at each step position, int8 and int16 "
             "state (float units).")


def _traces(s: Section, run_dir: Path) -> Any:
    from elman.report_traces import hidden_traces

    s.heading("Hidden state along one held-out sequence")
    try:
        traces = hidden_traces(run_dir)
    except (ElmanError, OSError, ValueError) as exc:
        s.note_missing(f"hidden-state traces unavailable: {exc}")
        return None
    units = traces.units_to_show()
    diff = np.abs(traces.float_h - traces.int8_h)
    s.figure(report_plots.hidden_traces(traces.float_h, traces.int8_h, units),
             f"Float (Keras weights) and int8 (simulator, tflm, dequantized) hidden state of "
             f"the {len(units)} most active units along {traces.description}. "
             f"|difference| over all units and steps: mean {fmt(float(diff.mean()))}, "
             f"max {fmt(float(diff.max()))}.")
    return traces


def _drift(s: Section, drift: dict[str, Any] | None, traces: Any) -> None:
    s.heading("Drift over a long stream")
    if drift and drift.get("windows"):
        w = drift["windows"]
        ends = [x["start"] + x["steps"] for x in w]
        s.figure(report_plots.error_by_step(
            ends, {"mean |error|": [x["hidden_mean_abs_error"] for x in w],
                   "max |error|": [x["hidden_max_abs_error"] for x in w]},
            f"step (windows of {drift.get('window')})"),
            f"Hidden-state error of LiteRT int8 against float in consecutive windows of one "
            f"validation stream of {fmt(ends[-1])} steps: an int8 state that drifted would "
            "grow here.")
        s.table(["window", "steps", "mean |error|", "max |error|", "float bits/char",
                 "int8 bits/char"],
                [[x["start"], x["steps"], x["hidden_mean_abs_error"], x["hidden_max_abs_error"],
                  x["float_bits_per_char"], x["int8_bits_per_char"]] for x in w])
    elif traces is not None and traces.stream_error is not None:
        err = traces.stream_error
        window = max(1, len(err) // 40)
        n = len(err) // window
        means = err[: n * window].reshape(n, window).mean(axis=1)
        ends = np.arange(1, n + 1) * window
        s.figure(report_plots.error_by_step(ends, {f"mean over {window} steps": means},
                                            "step"),
                 f"Mean |h_float − h_int8| (simulator, tflm) along {traces.stream_description}: "
                 f"first {fmt(float(means[0]))}, last {fmt(float(means[-1]))}.")
    else:
        s.note_missing("no long-stream measurement in quant_report.json.")


# ---- the task metric ---------------------------------------------------------------


def task_section(run_dir: Path, train: Report, quant: Report, verify: Report,
                 checks: list[Check] | None = None) -> Section:
    s = Section("task", "Task metric")
    header, rows = task_metric_rows(train, quant, verify)
    if not rows:
        s.missing = _missing(rundir.TRAIN_REPORT, run_dir)
        return s
    s.table(header, rows)
    if checks:
        s.heading("Acceptance checks")
        s.table(["check", "measured", "criterion", "status"],
                [[c.name, c.measured, c.criterion, Cell(c.status, "status")] for c in checks],
                ["ok" if c.met else "bad" for c in checks])
        for advice in dict.fromkeys(c.advice for c in checks if not c.met and c.advice):
            s.text(f"What to try: {advice}.")
    metrics = (train or {}).get("metrics", {})
    cm = metrics.get("confusion_matrix")
    if cm:
        s.heading("Confusion matrix (float model, test split)")
        s.figure(report_plots.confusion_matrix(np.asarray(cm), metrics.get("classes") or
                                               [str(i) for i in range(len(cm))]),
                 "Rows: true class; columns: predicted class.")
    baseline = (train or {}).get("baseline")
    if baseline:
        s.heading("Against Kneser–Ney character n-grams (validation split)")
        model = train.get("model", {})
        rows = [[f"RNN, {model.get('units')} units", metrics.get("val_perplexity"),
                 metrics.get("val_bits_per_char"), model.get("int8_bytes"),
                 "int8 parameters"]]
        for _, b in sorted(baseline.items(), key=lambda kv: kv[1].get("order", 0)):
            rows.append([f"Kneser–Ney order {b.get('order')}", b.get("val_perplexity"),
                         b.get("val_bits_per_char"), b.get("bytes"),
                         f"{fmt(b.get('entries'))} n-gram entries"])
        s.table(["model", "perplexity", "bits/char", "bytes", "size of"], rows)
    return s


# ---- verification ------------------------------------------------------------------


def verification_section(run_dir: Path, verify: Report, mcu: Report) -> Section:
    s = Section("verification", "Bit-exactness")
    if verify is None and mcu is None:
        s.missing = _missing(rundir.VERIFY_REPORT, run_dir)
        return s
    if verify is None:
        s.note_missing(_missing(rundir.VERIFY_REPORT, run_dir))
    rows, statuses = [], []
    for p in bit_exact_pairs(verify, mcu):
        first = p.get("first_mismatch")
        rows.append([p["a"], p["b"], p.get("profile") or "", p["compared"], p["mismatches"],
                     p["max_abs_diff_lsb"], status_cell(bool(p["ok"])),
                     "—" if not first else first_mismatch_text(first), p["data"]])
        statuses.append("ok" if p["ok"] else "bad")
    s.text("Every hidden unit and every output of every step, compared as int8 values; "
           "the first mismatch names (sequence, step, unit) and both values.")
    s.table(["", "against", "profile", "values", "mismatches", "max |diff| LSB", "status",
             "first mismatch", "data"], rows, statuses)
    return s


def first_mismatch_text(first: dict[str, Any]) -> str:
    return (f"sequence {first['sequence']}, step {first['step']}, "
            f"{first['kind']}[{first['unit']}]: {first['a']} vs {first['b']}")


# ---- microcontroller ---------------------------------------------------------------


def mcu_section(run_dir: Path, mcu: Report) -> Section:
    s = Section("mcu", "On the microcontroller")
    if mcu is None:
        s.missing = _missing(rundir.MCU_REPORT, run_dir)
        return s
    s.text(f"Built with {mcu.get('toolchain', 'arm-none-eabi-gcc')}; executed in "
           f"{mcu.get('emulator', 'unicorn')}.")
    rows = [[b["profile"], b["cpu"], f"-{b['opt']}", b["flash"], b["code"], b["weights_tables"],
             b["ram"], b.get("stack_bytes"), b["instructions_per_step"],
             b["instructions_per_mac"], status_cell(bool(b.get("bit_exact")))]
            for b in mcu_rows(mcu)]
    s.table(["profile", "cpu", "opt", "flash B", "code", "weights + tables", "static RAM",
             "stack", "instructions / step", "instructions / MAC", "vs simulator"], rows,
            ["ok" if b.get("bit_exact") else "bad" for b in mcu_rows(mcu)])
    tflm = mcu.get("tflm")
    if tflm:
        s.heading("The same model under TensorFlow Lite Micro")
        s.table(["", "bytes", "source"], [
            [".tflite (flash)", tflm.get("tflite_bytes"), tflm.get("tflite_bytes_source")],
            ["tensor arena (RAM)", tflm.get("arena_bytes"), tflm.get("arena_source")],
            ["interpreter framework code (flash)", tflm.get("framework_code_bytes"),
             tflm.get("framework_code_source")],
        ])
    return s


# ---- files ---------------------------------------------------------------------------


def files_section(run_dir: Path) -> Section:
    s = Section("files", "Files")
    rows = []
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            rows.append([Cell(str(rel)), path.stat().st_size])
    s.text(f"In {run_dir.resolve()}:")
    s.table(["file", "bytes"], rows)
    return s
