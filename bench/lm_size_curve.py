"""The size argument of a trained text run: perplexity against bytes.

    python bench/lm_size_curve.py RUN_DIR      # a run of `elman run --data text:fortunes`

Reads the run's train_report.json (the pruned Kneser-Ney curve, the float RNN)
and quant_report.json (the int8 RNN), prints the n-gram frontier and, for each
RNN point, the smallest pruned n-gram at its perplexity; writes
``bench/results/lm_size_curve.json`` and the figure ``lm_size_curve.png``
(the report's figure, for the README).
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

from elman import report_plots, rundir
from elman.report_size_curve import rnn_points, smallest_ngram_at

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    train = json.loads((args.run_dir / rundir.TRAIN_REPORT).read_text())
    quant_path = args.run_dir / rundir.QUANT_REPORT
    quant = json.loads(quant_path.read_text()) if quant_path.exists() else None
    curve = train["size_curve"]
    points, frontier = curve["points"], curve["frontier"]
    print("pruned Kneser-Ney frontier (the smallest n-gram at each perplexity)")
    print(f"{'order':>5}{'cut-off':>8}{'perplexity':>11}{'entries':>11}{'bytes':>13}")
    for p in frontier:
        print(f"{p['order']:>5}{p['cutoff']:>8}{p['val_perplexity']:>11.3f}"
              f"{p['entries']:>11,}{p['bytes']:>13,}")
    rows = []
    print(f"\n{'model':<36}{'perplexity':>11}{'bytes':>10}   smallest n-gram at least as good")
    for m in rnn_points(train, quant, None):
        ngram = smallest_ngram_at(points, m.perplexity)
        rows.append({"model": m.label, "perplexity": m.perplexity, "bytes": m.bytes,
                     "size_of": m.size_of, "smallest_ngram": ngram})
        other = "none" if ngram is None else (
            f"order {ngram['order']} cut-off {ngram['cutoff']}: {ngram['val_perplexity']:.3f}, "
            f"{ngram['bytes']:,} bytes ({ngram['bytes'] / m.bytes:.1f}x)")
        print(f"{m.label:<36}{m.perplexity:>11.3f}{m.bytes:>10,}   {other}")
    uri = report_plots.size_curve([(p["bytes"], p["val_perplexity"]) for p in points],
                                  [(p["bytes"], p["val_perplexity"]) for p in frontier],
                                  [(r["model"], r["bytes"], r["perplexity"]) for r in rows])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lm_size_curve.png").write_bytes(base64.b64decode(uri.split(",", 1)[1]))
    out = RESULTS / "lm_size_curve.json"
    out.write_text(json.dumps({"run": str(args.run_dir), "pruning": curve["pruning"],
                               "frontier": frontier, "points": points, "rnn": rows},
                              indent=2, sort_keys=True) + "\n")
    print(f"wrote {out} and lm_size_curve.png")


if __name__ == "__main__":
    main()
