"""The acceptance run of issue 15 (12 trials, 2 jobs, BasicMotions, a 12K/1K Cortex-M0+),
through bench/search.py: every trained trial equals a fresh `elman mcu` of its run
directory and the best trial fits. Wall-clock time is the bench's table, not asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "bench" / "search.py"


@pytest.mark.slow
def test_acceptance_search_matches_elman_mcu_and_fits(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH), "--out", str(tmp_path / "s")],
                          capture_output=True, text=True, timeout=3600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((BENCH.parent / "results" / "search.json").read_text())
    assert result["trained"] == 12 and result["mcu_mismatches"] == []
    assert result["best_fits"] and result["bounds_held"]
