"""The acceptance checks of a run, each met or NOT met, and what to try when one fails.

:func:`acceptance_checks` reads the stage reports of a run directory and
returns one :class:`Check` per criterion:

- **int8 vs float**: the int8 model's task metric within the quantization
  tolerance of the float model's (``elman.quantize.evaluate``), measured by
  ``quantize`` in LiteRT and by ``verify`` with each profile's simulator;
- **float vs chance** (classification): the float model's held-out accuracy at
  least a third of the way from chance (always answering the most common class
  of the held-out split) to 1.0 — a model below it has not learned the task;
- **float vs the order-3 n-gram** (text): the float model's validation
  perplexity below the interpolated Kneser–Ney order-3 model's on the same text;
- **bit-exactness**: every pair of implementations agrees on every value.

``elman run`` prints them (:mod:`elman.pipeline_summary`) and, with
``--strict``, exits with status 1 when one is NOT met; ``report.html`` shows
them first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Report = dict[str, Any] | None
CHANCE_GAP_FRACTION = 1 / 3  # of the way from chance to a perfect score

NEAR_CHANCE_ADVICE = (
    "the float model is near chance: it has not learned this task. Try training longer "
    "(--epochs), more units (--units), a smaller learning rate (--lr), a shorter loss "
    "window (--loss-steps) or a truncated-BPTT window (--bptt) for long sequences; "
    "see `elman train --help`")
INT8_ADVICE = (
    "int8 loses more than the tolerance: try `elman quantize --input-percentile 100` (or "
    "99), the other arithmetic profile (--profile), or more units (--units) so that no "
    "unit carries too much")
NGRAM_ADVICE = ("the float model does not beat a 3-gram: train longer (--minutes), or with "
                "more units (--units)")
BIT_EXACT_ADVICE = ("implementations disagree: see the first mismatch in verify_report.json / "
                    "mcu_report.json; this is a bug in elman, please report it")


@dataclass(frozen=True)
class Check:
    """One acceptance criterion: what was measured, against what, and whether it is met."""

    name: str
    measured: str
    criterion: str
    met: bool
    advice: str = ""

    @property
    def status(self) -> str:
        return "met" if self.met else "NOT met"


def _tolerances() -> tuple[float, float]:
    from elman.quantize.evaluate import ACCURACY_TOLERANCE, BPC_TOLERANCE

    return ACCURACY_TOLERANCE, BPC_TOLERANCE


def int8_checks(quant: Report, verify: Report) -> list[Check]:
    accuracy_tol, bpc_tol = _tolerances()
    checks = []
    ev = (quant or {}).get("evaluation") or {}
    acceptance = ev.get("acceptance")
    if acceptance is not None:
        metrics = ev.get("metrics", {})
        key = "accuracy" if "accuracy" in metrics.get("float", {}) else "bits_per_char"
        f, q = metrics.get("float", {}).get(key), metrics.get("int8", {}).get(key)
        checks.append(Check(
            "int8 vs float [LiteRT]", _pair(key, q, f), acceptance.get("criterion", ""),
            bool(acceptance.get("met")), "" if acceptance.get("met") else INT8_ADVICE))
    for fl in _float_vs_int8(verify):
        m = fl.get("metrics", {})
        if m.get("float_accuracy") is not None:
            f, q = m["float_accuracy"], m["int8_accuracy"]
            met = f - q <= accuracy_tol + 1e-12
            checks.append(Check(f"int8 vs float [{fl['profile']}]", _pair("accuracy", q, f),
                                f"int8 accuracy within {accuracy_tol:g} of float", met,
                                "" if met else INT8_ADVICE))
        elif m.get("float_bits_per_char") is not None:
            f, q = m["float_bits_per_char"], m["int8_bits_per_char"]
            met = q - f <= bpc_tol
            checks.append(Check(f"int8 vs float [{fl['profile']}]", _pair("bits_per_char", q, f),
                                f"int8 bits/char within {bpc_tol:g} of float", met,
                                "" if met else INT8_ADVICE))
    return checks


def chance_check(train: Report, quant: Report) -> Check | None:
    """Classification: the float model's accuracy against always answering the commonest class."""
    metrics = (train or {}).get("metrics") or {}
    matrix = metrics.get("confusion_matrix")
    if not matrix:
        return None
    counts = [sum(row) for row in matrix]
    total = sum(counts)
    if not total:
        return None
    chance = max(counts) / total
    accuracy = ((quant or {}).get("evaluation") or {}).get("metrics", {}).get(
        "float", {}).get("accuracy", metrics.get("test_accuracy"))
    if accuracy is None:
        return None
    bar = chance + CHANCE_GAP_FRACTION * (1.0 - chance)
    met = accuracy >= bar - 1e-12
    return Check("float vs chance",
                 f"{accuracy:.3f} (chance {chance:.3f}, {len(counts)} classes)",
                 f"float accuracy ≥ {bar:.3f}, a third of the way from chance to 1", met,
                 "" if met else NEAR_CHANCE_ADVICE)


def ngram_check(train: Report) -> Check | None:
    """Text: the float model's validation perplexity against Kneser–Ney order 3."""
    kn3 = ((train or {}).get("baseline") or {}).get("kn3") or {}
    ours = ((train or {}).get("metrics") or {}).get("val_perplexity")
    theirs = kn3.get("val_perplexity")
    if ours is None or theirs is None:
        return None
    met = ours < theirs
    return Check("float vs 3-gram", f"perplexity {ours:.3f} vs {theirs:.3f}",
                 "float validation perplexity below the Kneser–Ney order-3 model's", met,
                 "" if met else NGRAM_ADVICE)


def bit_exact_check(pairs: list[dict[str, Any]]) -> Check | None:
    if not pairs:
        return None
    bad = sum(not p["ok"] for p in pairs)
    return Check("bit-exactness", f"{len(pairs) - bad} of {len(pairs)} pairs bit-exact",
                 "every pair equal on every int8 value", bad == 0,
                 "" if bad == 0 else BIT_EXACT_ADVICE)


def acceptance_checks(train: Report, quant: Report, verify: Report,
                      pairs: list[dict[str, Any]]) -> list[Check]:
    """Every acceptance check the reports allow, in the order a reader asks them."""
    checks = [chance_check(train, quant), ngram_check(train), *int8_checks(quant, verify),
              bit_exact_check(pairs)]
    return [c for c in checks if c is not None]


def _float_vs_int8(verify: Report) -> list[dict[str, Any]]:
    rows = (verify or {}).get("float_vs_int8") or []
    return [rows] if isinstance(rows, dict) else list(rows)


def _pair(key: str, int8: Any, flt: Any) -> str:
    if int8 is None or flt is None:
        return "?"
    unit = "" if key == "accuracy" else " bits/char"
    return f"int8 {int8:.3f} vs float {flt:.3f}{unit}"
