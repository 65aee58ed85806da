"""``search_report.json``, the trial table, the Pareto fronts, and the best run directory.

Every trial of the study becomes one entry of ``trials``: its parameters, its
state (``complete``, ``pruned``, ``failed``, ``rejected`` when its model could
not fit and it was never trained, ``interrupted`` when its process was stopped
or killed and its slot ran again, ``failed`` when it raised an error (its slot
runs again once with the same parameters), ``running``, ``waiting``), the quantized
model's validation ``metric`` (int8, or the int16 state), and ``flash``,
``ram``, ``instructions_per_step``, ``instructions_per_step_max``,
``cycles_per_step_max`` (the target registry's cycle model on the slowest step)
and ``latency_us`` (those cycles at ``--clock``): measured by ``elman mcu`` on
the trial's run directory for a trained trial (``footprint: measured``), else
those of a random-weight model of its shape (``footprint: estimated``).
``best`` is the complete trial that fits the budget with the best metric
(ties: less flash, then RAM), copied to ``SEARCH_DIR/best`` as a normal run
directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from elman.search import study as studies
from optuna.trial import FrozenTrial, TrialState

REPORT_JSON = "search_report.json"
BEST_DIR = "best"
REPORT_FORMAT = "elman-search-report/1"
FIELDS = ("flash", "ram", "instructions_per_step", "instructions_per_step_max",
          "cycles_per_step_max", "latency_us")
AXES = (("flash", "flash (B)"), ("ram", "RAM (B)"), ("latency_us", "latency (µs)"))


def trial_state(t: FrozenTrial, retried: frozenset[int] = frozenset()) -> str:
    """The trial's state in the report; ``retried``: numbers of trials whose slot was put
    back in the queue because they did not finish (killed or interrupted)."""
    if "rejected" in t.user_attrs:
        return "rejected"
    if t.state == TrialState.FAIL and "error" not in t.user_attrs and (
            t.number in retried or "interrupted" in t.user_attrs):
        return "interrupted"
    return {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned",
            TrialState.FAIL: "failed", TrialState.RUNNING: "running",
            TrialState.WAITING: "waiting"}[t.state]


def retried_numbers(trials: list[FrozenTrial]) -> frozenset[int]:
    return frozenset(t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs)


def trial_entry(t: FrozenTrial, retried: frozenset[int] = frozenset()) -> dict[str, Any]:
    a = t.user_attrs
    measured = a.get("measured")
    source = measured or a.get("estimate") or {}
    entry: dict[str, Any] = {
        "number": t.number, "slot": a.get(studies.SLOT_ATTR), "state": trial_state(t, retried),
        "params": dict(t.params), "metric": a.get("metric"),
        "float_metric": a.get("float_metric"),
        **{k: source.get(k) for k in FIELDS},
        "footprint": "measured" if measured else ("estimated" if source else None),
        "estimate": a.get("estimate"),
        "feasible": a.get("feasible") if measured else (False if "rejected" in a else None),
        "run_dir": a.get("run_dir") if t.state == TrialState.COMPLETE else None,
        "host": a.get("host"),
        "seconds": a.get("seconds"),
        "timings": a.get("timings"),
    }
    for key in ("rejected", "over_budget", "error", "bound_held", "interrupted", "retry_of",
                "resampled_after"):
        if key in a:
            entry[key] = a[key]
    if t.state == TrialState.PRUNED:
        entry["pruned_at_epoch"] = t.last_step
    return entry


def choose_best(entries: list[dict[str, Any]], direction: str) -> dict[str, Any] | None:
    fit = [e for e in entries if e["state"] == "complete" and e["feasible"]
           and e["metric"] is not None]
    if not fit:
        return None
    sign = -1.0 if direction == "maximize" else 1.0
    return min(fit, key=lambda e: (sign * e["metric"], e["flash"], e["ram"], e["number"]))


def pareto_front(entries: list[dict[str, Any]], axis: str, direction: str) -> list[int]:
    """Numbers of the trained trials that no other beats on both the metric and ``axis``."""
    points = [e for e in entries if e["footprint"] == "measured" and e["metric"] is not None
              and e[axis] is not None]
    sign = 1.0 if direction == "maximize" else -1.0

    def dominates(a: dict, b: dict) -> bool:
        better_or_equal = sign * a["metric"] >= sign * b["metric"] and a[axis] <= b[axis]
        strictly = sign * a["metric"] > sign * b["metric"] or a[axis] < b[axis]
        return better_or_equal and strictly

    return sorted(e["number"] for e in points
                  if not any(dominates(o, e) for o in points if o is not e))


def build_report(study: Any, config: dict[str, Any], *, budget: dict[str, Any],
                 validation: str, metric_name: str, direction: str,
                 best_dir: Path | None) -> dict[str, Any]:
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    retried = retried_numbers(trials)
    entries = [trial_entry(t, retried) for t in trials]
    best = choose_best(entries, direction)
    counts: dict[str, int] = {}
    for e in entries:
        counts[e["state"]] = counts.get(e["state"], 0) + 1
    return {
        "format": REPORT_FORMAT,
        "study": study.study_name,
        "options": config,
        "budget": budget,
        "objective": {"metric": f"quantized validation {metric_name}", "direction": direction,
                      "validation": validation},
        "slots": studies.slot_count(study),
        "counts": counts,
        "trained": sum(counts.get(s, 0) for s in ("complete", "pruned")),
        # slots with no trained trial and none left to run (each attempt failed: see the
        # trials' "error"); a rerun of a local search gives each one more attempt
        "failed_slots": studies.failed_slots(trials, studies.slot_count(study)),
        "trials": entries,
        "best": None if best is None else {**best, "trial_run_dir": best["run_dir"],
                                           "run_dir": str(best_dir) if best_dir else None},
        "pareto": {axis: pareto_front(entries, axis, direction) for axis, _ in AXES},
    }


def copy_best(entry: dict[str, Any] | None, search_dir: Path) -> Path | None:
    """Copy the best trial's run directory to ``SEARCH_DIR/best`` (all at once)."""
    dest = search_dir / BEST_DIR
    source = None if entry is None else entry.get("trial_run_dir")
    if not source or not Path(source).is_dir():
        return None
    tmp = Path(tempfile.mkdtemp(prefix=".best-", dir=search_dir))
    try:
        shutil.copytree(source, tmp / "run")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp / "run", dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _fmt(v: Any, spec: str = ",.0f") -> str:
    return "-" if v is None else format(v, spec)


def table_header() -> str:
    return (f"{'trial':>5} {'state':<9} {'units':>5} {'lyr':>3} {'emb':>3} {'lr':>7} "
            f"{'bptt':>4} {'profile':<7} {'width':<5} {'metric':>7} {'flash':>7} {'RAM':>6} "
            f"{'instr/step':>10} {'latency':>9} {'time':>5}")


def table_row(e: dict[str, Any]) -> str:
    p = e["params"]
    latency = e.get("latency_us")
    lat = "-" if latency is None else (f"{latency / 1000:.2f}ms" if latency >= 1000
                                       else f"{latency:.0f}us")
    marker = "" if e["footprint"] != "estimated" else "~"
    return (f"{e['number']:>5} {e['state']:<9} {_fmt(p.get('units'), 'd'):>5} "
            f"{_fmt(p.get('layers'), 'd'):>3} {_fmt(p.get('embedding'), 'd'):>3} "
            f"{_fmt(p.get('lr'), '.1e'):>7} {_fmt(p.get('bptt'), 'd'):>4} "
            f"{p.get('profile', '-'):<7} {p.get('state', '-'):<5} "
            f"{_fmt(e['metric'], '.3f'):>7} "
            f"{marker + _fmt(e['flash']):>7} {marker + _fmt(e['ram']):>6} "
            f"{marker + _fmt(e['instructions_per_step_max']):>10} {marker + lat:>9} "
            f"{_fmt(e.get('seconds'), '.0f'):>4}s")


def format_table(report: dict[str, Any]) -> str:
    lines = [table_header()] + [table_row(e) for e in report["trials"]]
    lines.append("(~: a random-weight model of the trial's shape, not trained; instr/step: "
                 "the slowest step; width: the state's)")
    return "\n".join(lines)
