"""The README's comparison tables, from the JSON files ``run.py`` wrote.

Usage: .venv/bin/python bench/peers/markdown.py [--readme README.md]
           bench/results/peers_bm64.json bench/results/peers_bm128.json
(--readme: written between the README's ``<!-- peers-tables`` and
``<!-- /peers-tables -->`` lines instead of printed.)
Prints, per model size and core, a table of the -O2 builds (flash and RAM with their
split, instructions per step and per MAC, agreement), then one table of the -Os
builds of every size and core.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

CPU_TITLES = {"cortex-m4": "Cortex-M4", "cortex-m0plus": "Cortex-M0+"}
SHORT = {"weights and tables": "weights", "model (.tflite)": ".tflite",
         "libc/libm/libgcc": "libc", "model (weights.h)": "model",
         "model (generated C)": "model", "keras2c runtime": "runtime",
         "NNoM library": "library", "application": "app", "step code": "code"}


def name(row: dict[str, Any]) -> str:
    elman = row["peer"] == "elman"
    text = "elman (`tflm` profile)" if elman else f"{row['peer']} {row['variant']}"
    if row["peer"] == "keras2c":
        text += " (M4F)" if row["cpu"] == "cortex-m4" else " (soft float)"
    return text + (" †" if row["head"] == "last step" else "")


def split(parts: dict[str, int]) -> str:
    return " + ".join(f"{v:,} {SHORT.get(k, k)}" for k, v in
                      sorted(parts.items(), key=lambda kv: -kv[1]) if v)


def agreement(row: dict[str, Any]) -> str:
    c = row["check"]
    if "mismatches" in c:
        if c["mismatches"] == 0:
            return "bit-exact (every step)"
        return f"{c['mismatches']:,} of {c['values']:,} differ, max {c['max_abs_diff_lsb']} LSB"
    return f"max abs error {c['max_abs_error']:.2g} of a {c['output_range']:.1f} range"


def o2_table(report: dict[str, Any], cpu: str) -> str:
    m = report["model"]
    head = (f"| {m['units']} units, {CPU_TITLES[cpu]}, −O2 | flash B | RAM B | "
            "instructions / step | / MAC | vs elman's simulator or Keras float |")
    lines = [head, "|---|---|---|---:|---:|---|"]
    for r in report["rows"]:
        if r["cpu"] != cpu or r["opt"] != "O2":
            continue
        ips = r["instructions_per_step"]
        lines.append(f"| {name(r)} | **{r['flash']:,}** ({split(r['flash_split'])}) | "
                     f"**{r['ram']:,}** ({split(r['ram_split'])}) | {ips:,.0f} | "
                     f"{ips / r['macs_per_step']:.2f} | {agreement(r)} |")
    return "\n".join(lines)


def os_table(reports: list[dict[str, Any]]) -> str:
    cols = [(rep, cpu) for rep in reports for cpu in CPU_TITLES]
    head = "| −Os: flash B / RAM B / instructions per step | " + " | ".join(
        f"{rep['model']['units']} u, {CPU_TITLES[cpu]}" for rep, cpu in cols) + " |"
    lines = [head, "|---|" + "---:|" * len(cols)]
    names: list[tuple[str, str, str]] = []
    for rep in reports:
        for r in rep["rows"]:
            key = (r["peer"], r["variant"], r["head"])
            if r["opt"] == "Os" and key not in names:
                names.append(key)
    for key in names:
        cells = []
        label = None
        for rep, cpu in cols:
            row = next((r for r in rep["rows"] if (r["peer"], r["variant"], r["head"]) == key
                        and r["cpu"] == cpu and r["opt"] == "Os"), None)
            if row is None:
                cells.append("—")
                continue
            label = label or name(row).replace(" (M4F)", "").replace(" (soft float)", "")
            cells.append(f"{row['flash']:,} / {row['ram']:,} / "
                         f"{row['instructions_per_step']:,.0f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def short(commit: str | None) -> str:
    return commit[:12] if commit else "not a git checkout"


def provenance(report: dict[str, Any]) -> str:
    """Where one report's numbers come from: date, elman's commit, each peer's commit
    (TFLM's third-party trees too), the compiler and the emulator."""
    m = report["model"]
    tree = report.get("elman") or {}
    elman = short(tree.get("commit")) if tree else "commit not recorded"
    if tree.get("changed_files"):
        changed = tree["changed_files"]
        where = changed if len(changed) <= 3 else sorted({str(Path(f).parent) for f in changed})
        elman += f" (with uncommitted changes to {', '.join(where)})"
    if report.get("elman_date") and report["elman_date"] != report["date"]:
        elman += f", its rows measured {report['elman_date']}"
    if report.get("peers_elman"):  # elman's rows measured again by --refresh-elman
        elman += (" (its rows measured again; the peers' with elman "
                  f"{short(report['peers_elman'].get('commit'))})")
    peers = []
    for peer, src in report.get("sources", {}).items():
        text = f"{peer} {short(src.get('commit'))}"
        third = src.get("third_party") or {}
        if third:
            text += " (" + ", ".join(f"{k} {short(v.get('commit'))}" for k, v in
                                    third.items()) + ")"
        peers.append(text)
    parts = [f"{m['units']} units: measured {report['date']} on {report['data']}, model "
             f"`.tflite` SHA-256 {m['tflite_sha256'][:12]}", f"elman {elman}", *peers]
    for what, key in (("not measured", "skipped"), ("failed", "failed")):
        if report.get(key):
            parts.append(f"{what}: {', '.join(sorted(report[key]))}")
    parts += [report["toolchain"], report["emulator"].split(",")[0]]
    return "; ".join(parts) + "."


def tables(reports: list[dict[str, Any]]) -> str:
    """Where each report's numbers come from, then its tables."""
    out = [provenance(rep) for rep in reports]
    for rep in reports:
        out += [o2_table(rep, cpu) for cpu in CPU_TITLES
                if any(r["cpu"] == cpu and r["opt"] == "O2" for r in rep["rows"])]
    if any(r["opt"] == "Os" for rep in reports for r in rep["rows"]):
        out.append(os_table(reports))
    return "\n\n".join(out)


BEGIN, END = "<!-- peers-tables", "<!-- /peers-tables -->"


def replace_in_readme(text: str, body: str) -> str:
    """``text`` with the lines between its peers-tables markers replaced by ``body``."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN} ... --> {END} markers")
    start = text.index("\n", start) + 1
    return text[:start] + body + "\n" + text[end:]


def main(argv: list[str]) -> int:
    readme = None
    if argv[:1] == ["--readme"]:
        if len(argv) < 3:
            print("error: --readme README.md JSON...", file=sys.stderr)
            return 1
        readme, argv = Path(argv[1]), argv[2:]
    try:
        reports = [json.loads(Path(p).read_text()) for p in argv]
        body = tables(reports)
        if readme is not None:
            readme.write_text(replace_in_readme(readme.read_text(), body))
            print(f"wrote the tables into {readme}")
        else:
            print(body)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
