"""elman and its peers, measured side by side on the model of one run directory.

Every peer is built with Debian's arm-none-eabi-gcc for bare-metal Cortex-M4 and
Cortex-M0+ and run in elman's own emulator harness (unicorn, exact instruction
counts, painted stack, sizes from the linker map), on the run's own held-out test
sequences:

- elman's generated C (profile ``tflm``), bit-exact with elman's simulator;
- TensorFlow Lite Micro (``--tflm DIR``; its third-party trees from ``--tflm-deps``),
  reference and CMSIS-NN kernels, on the run's ``model_int8.tflite``, compared bit for
  bit with elman's simulator (profile ``tflm``); smallest arena by bisection;
- NNoM (``--nnom DIR``), q7, the model converted by NNoM's own script (TensorFlow
  2.14, in its own environment) and run once per sequence (head on the last step);
- keras2c (``--keras2c DIR``), float, the sequence API and a stateful one-step model.

A peer whose sources are not given is skipped with a line saying so. Prints one table
per core and writes JSON (default ``bench/results/peers_<run name>.json``).

Usage:
  .venv/bin/python bench/peers/run.py RUN_DIR [--tflm DIR [--tflm-deps DIR]]
      [--nnom DIR] [--keras2c DIR] [--envs DIR] [--cpu cortex-m4 --cpu cortex-m0plus]
      [--opt O2 --opt Os] [--sequences 8] [--keras2c-sequences 2] [--work DIR]
      [--jobs 2] [--json PATH]
  .venv/bin/python bench/peers/run.py RUN_DIR --refresh-elman JSON   (elman's rows only)
See the README's "Compared with other tools" section for where to get the sources.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parents[1] / "results"
CPUS = ("cortex-m4", "cortex-m0plus")
OPTS = ("O2", "Os")
DEFAULT_WORK = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "elman" / "peers"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, help="a run directory of `elman run` (sensor data)")
    p.add_argument("--tflm", type=Path, help="a tflite-micro source tree")
    p.add_argument("--tflm-deps", type=Path,
                   help="folder holding TFLM's third-party trees, one per repository "
                        "(flatbuffers, gemmlowp, ruy, CMSIS-NN, CMSIS_6, Cortex_DFP, kissfft, "
                        "pigweed); default: the folder that holds --tflm")
    p.add_argument("--nnom", type=Path, help="an NNoM source tree")
    p.add_argument("--keras2c", type=Path, help="a keras2c source tree (its C runtime)")
    p.add_argument("--envs", type=Path, default=DEFAULT_WORK / "envs",
                   help="the Python environments of NNoM and keras2c, made by "
                        "bench/peers/setup_envs.sh (default: %(default)s)")
    p.add_argument("--cpu", action="append", choices=CPUS, help="repeat; default: both")
    p.add_argument("--opt", action="append", choices=OPTS, help="repeat; default: both")
    p.add_argument("--sequences", type=int, default=8,
                   help="held-out test sequences to run (default: 8; 0: all)")
    p.add_argument("--keras2c-sequences", type=int, default=2,
                   help="keras2c runs at most this many of them (default: 2): soft float on "
                        "the Cortex-M0+ costs about a million instructions per step, and "
                        "float code's instruction count barely depends on the data")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK,
                   help="builds and caches (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=2, help="parallel compile jobs (default: 2)")
    p.add_argument("--json", type=Path, help="output JSON (default: "
                                             "bench/results/peers_<run name>.json)")
    p.add_argument("--refresh-elman", type=Path, metavar="JSON",
                   help="measure only elman's rows again and put them in place of those in "
                        "this report of the same run (the peers' rows are kept); written "
                        "back to it, or to --json")
    args = p.parse_args(argv)
    args.cpu = tuple(args.cpu or CPUS)
    args.opt = tuple(args.opt or OPTS)
    if args.sequences < 0 or args.keras2c_sequences < 1:
        p.error("--sequences must be >= 0 and --keras2c-sequences >= 1")
    return args


def elman_rows(model, cpus, opts) -> list[dict[str, Any]]:
    from elman_peer import head_every_step, head_last_step

    rows = []
    for cpu in cpus:
        for opt in opts:
            rows.append(head_every_step(model, cpu, opt))
            print(line(rows[-1]), flush=True)
            rows.append(head_last_step(model, cpu, opt, macs_per_step(model, False)))
            print(line(rows[-1]), flush=True)
    return rows


def tflm_rows(model, args, log, rows: list[dict[str, Any]]) -> None:
    """Measure the peer; each row is appended to ``rows`` as soon as it is measured."""
    from elman.runtime.simulator import Simulator
    from reference import int8_agreement
    from sources import source_tree, tflm_third_party
    from tflm import measure
    from tflm_build import KERNELS, MAKE_DIR, TflmConfig, check_cxx_headers, prepare_tree

    check_cxx_headers()
    tree = source_tree("TFLM", args.tflm, MAKE_DIR + "/Makefile")
    deps = (args.tflm_deps or tree.path.parent).expanduser().resolve()
    prepared = prepare_tree(tree, deps, args.work.resolve(), log)
    SOURCES["TFLM"] = {**tree.to_dict(), "third_party": {
        name: {**t.to_dict(), "pinned": f"{pin.repo}@{pin.rev}"}
        for name, (pin, t) in tflm_third_party(tree.path, deps).items()}}
    want = Simulator(model.ir, "tflm").run(model.x_q)
    for cpu in args.cpu:
        for kernels in KERNELS:
            for opt in args.opt:
                config = TflmConfig(cpu, kernels, opt)
                r = measure(model.ir, model.tflite, model.x_q, prepared, config,
                            args.work.resolve() / "programs" / "tflm" / model_key(model) /
                            config.name, args.jobs, log)
                check = int8_agreement("elman simulator (tflm)",
                                       np.concatenate([r.pop("h"), r.pop("y")], -1),
                                       np.concatenate([want.h, want.y], -1))
                rows.append({"peer": "TFLM", "variant": f"{kernels} kernels", "cpu": cpu,
                             "opt": opt, "head": "every step", "check": check,
                             "macs_per_step": model.ir.macs_per_step,
                             "commit": tree.commit, **r})
                print(line(rows[-1]), flush=True)


def converter_peer(args, name: str, given: Path, marker: str, env: str):
    """(source tree, the Python of its environment) of a peer whose converter runs in an
    environment of its own; None (with a skip line) when that environment is missing."""
    from sources import source_tree

    tree = source_tree(name, given, marker)
    SOURCES[name] = tree.to_dict()
    python = args.envs / env / "bin" / "python"
    if not python.exists():
        skip(name, f"no environment {args.envs / env} (create it with "
                   f"bench/peers/setup_envs.sh {args.envs})")
        return None
    return tree, python


def nnom_rows(model, args, log, rows: list[dict[str, Any]]) -> None:
    """Measure the peer; each row is appended to ``rows`` as soon as it is measured."""
    from nnom_peer import measure
    from reference import float_agreement

    found = converter_peer(args, "NNoM", args.nnom, "scripts/nnom.py", "nnom")
    if found is None:
        return
    tree, python = found
    for cpu in args.cpu:
        for opt in args.opt:
            r = measure(model, tree.path, python, cpu, opt,
                        args.work.resolve() / "nnom" / model_key(model) /
                        (tree.commit or "tree")[:12], log)
            check = float_agreement(r.pop("y_dequantized"), model)
            rows.append({"peer": "NNoM", "variant": "q7", "cpu": cpu, "opt": opt,
                         "head": "last step", "macs_per_step": macs_per_step(model, False),
                         "check": check, "commit": tree.commit, **r})
            print(line(rows[-1]), flush=True)


def keras2c_rows(model, args, log, rows: list[dict[str, Any]]) -> None:
    """Measure the peer; each row is appended to ``rows`` as soon as it is measured."""
    from keras2c_peer import VARIANTS, measure
    from reference import float_agreement

    found = converter_peer(args, "keras2c", args.keras2c, "include/k2c_include.h", "keras2c")
    if found is None:
        return
    tree, python = found
    model = model.first(args.keras2c_sequences)
    for cpu in args.cpu:
        for variant in VARIANTS:
            for opt in args.opt:
                r = measure(model, tree.path, python, variant, cpu, opt,
                            args.work.resolve() / "keras2c" / model_key(model) /
                            (tree.commit or "tree")[:12], log)
                y = r.pop("y")
                check = float_agreement(y, model, per_step=variant != "sequence")
                rows.append({"peer": "keras2c", "variant": f"float {variant}", "cpu": cpu,
                             "opt": opt, "check": check, "commit": tree.commit,
                             "sequences": len(model.x),
                             "head": "last step" if variant == "sequence" else "every step",
                             "macs_per_step": macs_per_step(model, variant != "sequence"),
                             **r})
                print(line(rows[-1]), flush=True)


SKIPPED: dict[str, str] = {}
SOURCES: dict[str, Any] = {}


def skip(name: str, why: str) -> list[dict[str, Any]]:
    SKIPPED[name] = why
    print(f"{name}: skipped ({why})", flush=True)
    return []


def macs_per_step(model, head_every_step: bool) -> float:
    """Multiply-accumulates per step: the two recurrent matrices, and the head on every
    step or once per sequence."""
    ir = model.ir
    head = ir.state_bytes * ir.output_dim
    return ir.state_bytes * (ir.input_dim + ir.state_bytes) + (head if head_every_step else
                                                   head / model.steps)


def model_key(model) -> str:
    return model.ir.source_sha256[:12] or model.run_dir.name


def fmt_split(split: dict[str, int]) -> str:
    return " + ".join(f"{k} {v:,}" for k, v in split.items() if v)


def line(row: dict[str, Any]) -> str:
    macs = row["macs_per_step"]
    c = row["check"]
    if "mismatches" in c:
        check = ("bit-exact" if c["mismatches"] == 0 else
                 f"{c['mismatches']} of {c['values']} differ (max {c['max_abs_diff_lsb']} LSB)")
    else:
        check = f"max |err| {c['max_abs_error']:.3g}, argmax {c['argmax_agrees']:.0%}"
    ips = row["instructions_per_step"]
    name = f"{row['peer']} {row['variant']}" + (" *" if row["head"] == "last step" else "")
    return (f"  {name:<32} {row['opt']:<3} {row['flash']:>8,} "
            f"{row['ram']:>8,} {ips:>12,.0f} {ips / macs:>9.2f}  {check}")


def table(rows: list[dict[str, Any]], cpu: str) -> str:
    head = (f"  {'implementation':<32} {'opt':<3} {'flash B':>8} {'RAM B':>8} "
            f"{'instr/step':>12} {'instr/MAC':>9}  check")
    out = [head, "  " + "-" * (len(head) + 20)]
    for r in rows:
        if r["cpu"] == cpu:
            out.append(line(r))
            out.append(f"      flash: {fmt_split(r['flash_split'])}")
            out.append(f"      RAM:   {fmt_split(r['ram_split'])}")
    out.append("  * head on the last step only: a sequence's instructions / T (MACs likewise)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from elman.firmware_codegen.arm.toolchain import find_toolchain
    from image import PeerBuildError
    from reference import load
    from sources import PeerSourceError, checkout_state

    from elman.errors import ElmanError

    started, cpu0 = time.time(), resource.getrusage(resource.RUSAGE_SELF)
    elman_tree = checkout_state(Path(__file__).resolve().parents[2])  # what is measured

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        model = load(args.run_dir, args.sequences or None)
    except (FileNotFoundError, ValueError, ElmanError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    ir = model.ir
    print(f"{args.run_dir}: {ir.input_dim}->{ir.state_bytes}->{ir.output_dim}, "
          f"{ir.macs_per_step:,} MACs per step; {model.describe()}")
    out = args.json or RESULTS / f"peers_{args.run_dir.resolve().name}.json"
    if args.refresh_elman is not None:
        return refresh_elman(args.refresh_elman, args.json or args.refresh_elman, model,
                             elman_tree)
    rows = elman_rows(model, args.cpu, args.opt)
    peers = [("TFLM", args.tflm, "--tflm DIR", tflm_rows),
             ("NNoM", args.nnom, "--nnom DIR", nnom_rows),
             ("keras2c", args.keras2c, "--keras2c DIR", keras2c_rows)]
    failed: dict[str, str] = {}
    for name, given, flag, fn in peers:
        if given is None:
            skip(name, f"no {flag} given; the README says where its sources are")
            continue
        try:
            fn(model, args, log, rows)
        except PeerSourceError as exc:  # the user's trees: nothing measured is worth keeping
            print(f"error: {name}: {exc}", file=sys.stderr)
            return 1
        except (PeerBuildError, ElmanError) as exc:
            # a peer that fails part way costs neither its rows so far nor the others'
            failed[name] = str(exc)
            print(f"error: {name}: {exc}", file=sys.stderr, flush=True)
    for cpu in args.cpu:
        print(f"\n{cpu}, {ir.state_bytes} units")
        print(table(rows, cpu))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    report = {
        "date": datetime.date.today().isoformat(),
        "run_dir": str(args.run_dir), "model": {
            "input_dim": ir.input_dim, "units": ir.state_bytes, "output_dim": ir.output_dim,
            "macs_per_step": ir.macs_per_step, "tflite_sha256": ir.source_sha256},
        "elman": elman_tree, "elman_date": datetime.date.today().isoformat(),
        "data": model.describe(), "rows": rows, "skipped": SKIPPED, "failed": failed,
        "sources": SOURCES, "toolchain": find_toolchain().version(),
        "emulator": "unicorn, elman.firmware_codegen.arm.machine (exact Thumb instruction "
                    "counts, painted stack)",
        "seconds": {"wall": round(time.time() - started, 1),
                    "cpu": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime,
                                 1)},
    }
    write_report(report, out)
    if failed:
        print(f"error: {', '.join(failed)} failed (above); the rows measured are in {out}",
              file=sys.stderr)
        return 1
    return 0


def write_report(report: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps(report, indent=1, sort_keys=True, default=_jsonable) + "\n")
    tmp.replace(out)
    print(f"\nwrote {out}")


def refresh_elman(path: Path, out: Path, model, elman_tree: dict[str, Any]) -> int:
    """Measure elman's rows again (after a change to elman's C) and put them in place of
    the old ones in the report at ``path``; the peers' rows stay as measured. The same
    model, the same test sequences and the same cores and levels are required."""
    try:
        report = json.loads(path.read_text())
        old = [r for r in report["rows"] if r["peer"] == "elman"]
        sha, data = report["model"]["tflite_sha256"], report["data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: --refresh-elman {path}: not a report of this bench ({exc})",
              file=sys.stderr)
        return 1
    problems = [why for bad, why in (
        (sha != model.ir.source_sha256, f"was measured on the model {sha[:12]}, the run's is "
                                       f"{model.ir.source_sha256[:12]}"),
        (data != model.describe(), f"was measured on {data}, not {model.describe()} "
                                   "(give the same --sequences)"),
        (not old, "has no elman rows")) if bad]
    if problems:
        print(f"error: --refresh-elman {path} {'; '.join(problems)}", file=sys.stderr)
        return 1
    cpus = tuple(dict.fromkeys(r["cpu"] for r in old))
    opts = tuple(dict.fromkeys(r["opt"] for r in old))
    fresh = elman_rows(model, cpus, opts)
    first = report["rows"].index(old[0])
    others = [r for r in report["rows"] if r["peer"] != "elman"]
    report["rows"] = others[:first] + fresh + others[first:]
    # the peers' rows (TFLM's compared with elman's simulator) keep the elman they ran with
    report.setdefault("peers_elman", report.get("elman"))
    report["elman"], report["elman_date"] = elman_tree, datetime.date.today().isoformat()
    write_report(report, out)
    return 0


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(type(v))


if __name__ == "__main__":
    sys.exit(main())
