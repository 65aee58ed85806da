"""`elman search` end to end on real BasicMotions, with tiny trials (3 epochs, <= 12 units).

Checks what the issue accepts on: every trained trial's flash / RAM / instructions
equal what `elman mcu` measures on its run directory, the best trial fits the
budget and is a normal run directory (`elman run --from quantize` works on it),
and an over-tight budget is one error with no trial run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from elman.quantize.reader import read_ir

from elman import rundir

SEARCH = ["--data", "sensor:basicmotions", "--cpu", "cortex-m0plus", "--flash", "12K",
          "--ram", "1K", "--latency", "2ms", "--clock", "64MHz", "--epochs", "3",
          "--max-units", "12"]


def elman(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "elman.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def small_search(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("search") / "s"
    proc = elman("search", *SEARCH, "--trials", "2", "--jobs", "2", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "best: trial" in proc.stdout
    return out


def load(search_dir: Path) -> dict:
    return json.loads((search_dir / "search_report.json").read_text())


def test_search_trains_the_requested_trials_and_reports_each(small_search):
    report = load(small_search)
    trained = [t for t in report["trials"] if t["state"] in ("complete", "pruned")]
    assert len(trained) == 2 and report["trained"] == 2
    assert sorted(t["slot"] for t in trained) == [0, 1]
    for t in report["trials"]:
        assert set(t["params"]) == {"units", "layers", "lr", "bptt", "profile", "state"}
        assert 1 <= t["params"]["layers"] <= 3
        for key in ("metric", "flash", "ram", "instructions_per_step", "latency_us", "state"):
            assert key in t
        if t["state"] == "rejected":
            assert t["footprint"] == "estimated" and t["run_dir"] is None
    for t in trained:
        assert t["state"] == "complete", t.get("error")
        assert 0.0 <= t["metric"] <= 1.0
        assert t["bound_held"] is True  # the estimate's lower bound held for the trained model
        spec = json.loads((Path(t["run_dir"]) / rundir.DATA_SPEC).read_text())
        assert "search validation" in spec["search_validation"]
        assert spec["sizes"]["train"] == 30  # 40 training sequences minus 10 for validation


def test_every_trained_trial_matches_what_elman_mcu_measures(small_search, tmp_path):
    report = load(small_search)
    for t in (t for t in report["trials"] if t["footprint"] == "measured"):
        run = tmp_path / f"t{t['number']}"
        shutil.copytree(t["run_dir"], run)
        (run / rundir.MCU_REPORT).unlink()
        proc = elman("mcu", str(run), "--cpu", "cortex-m0plus", "--opt", "O2", "--profile",
                     t["params"]["profile"])
        assert proc.returncode == 0, proc.stderr
        build = json.loads((run / rundir.MCU_REPORT).read_text())["builds"][0]
        assert (t["flash"], t["ram"], t["instructions_per_step"],
                t["instructions_per_step_max"], t["cycles_per_step_max"]) == (
            build["flash"], build["ram"], build["instructions_per_step"],
            build["instructions_per_step_max"], build["cycles_per_step_max"])
        # latency: the registry's cycle model on the slowest step, at --clock 64MHz
        assert t["latency_us"] == pytest.approx(build["cycles_per_step_max"] / 64)
        ir = read_ir(run / rundir.MODEL_TFLITE)
        assert ir.state_bits == {"int8": 8, "int16": 16}[t["params"]["state"]]


def test_best_fits_the_budget_and_is_a_normal_run_directory(small_search):
    report = load(small_search)
    best = report["best"]
    assert best is not None and best["feasible"] is True
    assert best["flash"] <= 12 * 1024 and best["ram"] <= 1024 and best["latency_us"] <= 2000
    trained = [t for t in report["trials"] if t["state"] == "complete" and t["feasible"]]
    assert best["metric"] == max(t["metric"] for t in trained)
    best_dir = Path(best["run_dir"])
    assert best_dir == small_search / "best"
    proc = elman("run", "--from", "quantize", "--cpu", "cortex-m0plus", "--opt", "O2",
                 "--profile", best["params"]["profile"], "--limit", "4", "--quiet",
                 "--state", best["params"]["state"],  # as the trial was quantized
                 str(best_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    mcu = json.loads((best_dir / rundir.MCU_REPORT).read_text())["builds"][0]
    assert mcu["flash"] == best["flash"] and mcu["ram"] == best["ram"]
    assert (best_dir / rundir.REPORT_HTML).is_file()


def test_search_page_is_self_contained_with_three_pareto_plots(small_search):
    page = (small_search / "search.html").read_text()
    assert page.count("data:image/png;base64,") == 3
    assert "http://" not in page and "https://" not in page
    assert "Content-Security-Policy" in page
    report = load(small_search)
    assert set(report["pareto"]) == {"flash", "ram", "latency_us"}


def test_rerunning_a_finished_search_trains_nothing_more(small_search):
    before = load(small_search)
    proc = elman("search", *SEARCH, "--trials", "2", "--jobs", "1", str(small_search))
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = load(small_search)
    assert [t["number"] for t in after["trials"]] == [t["number"] for t in before["trials"]]


def test_other_options_on_the_same_search_dir_are_refused(small_search):
    args = [a if a != "12K" else "16K" for a in SEARCH]
    proc = elman("search", *args, "--trials", "2", str(small_search))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: study 'elman-search'")
    assert "flash: 12288 there, 16384 here" in proc.stderr


def test_an_over_tight_budget_is_one_error_and_no_trial(tmp_path):
    out = tmp_path / "tight"
    proc = elman("search", "--data", "sensor:basicmotions", "--cpu", "cortex-m0plus",
                 "--flash", "1K", "--ram", "1K", "--trials", "3", str(out))
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    assert "no model in the search space fits" in errors[0]
    assert "flash" in errors[0] and "units 4" in errors[0]
    assert not out.exists()
