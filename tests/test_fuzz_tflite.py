"""Damaged copies of a real quantized model through inspect, codegen and verify.

No variant may give a traceback, and no stage may accept a variant whose IR
differs from the original's (issue 12: 17.5% of 211 damaged copies were
certified bit-exact). The default suite tries a few dozen variants; the slow
suite hundreds, on a classifier and a text model.
"""

import pytest
from tflite_fuzz import byte_variants, graph_variants, run_trial

from elman import rundir


def _assert_clean(result) -> None:
    details = "; ".join(f"{v.kind} {v.label} in {stage}: {what}" for v, stage, what in result.bad)
    assert result.outcomes["traceback"] == 0, details
    assert result.outcomes["silently accepted"] == 0, details
    assert result.outcomes["refused cleanly"] >= 0.9 * result.tried, result.table()


def test_damaged_models_are_refused_or_unchanged(bm_run, tmp_path):
    model = (bm_run / rundir.MODEL_TFLITE).read_bytes()
    variants = byte_variants(model, 24, seed=12)
    variants += [v for v in graph_variants(model)
                 if v.label in ("FULLY_CONNECTED with no inputs", "one weight changed",
                                "one weight scale doubled", "schema version 2",
                                "weights one byte short", "operator output -1")]
    result = run_trial(bm_run, variants, tmp_path)
    assert result.tried == len(variants)
    _assert_clean(result)


@pytest.mark.slow
@pytest.mark.parametrize("run_fixture", ["bm_run", "text_run"])
def test_a_large_corpus_is_refused_or_unchanged(run_fixture, request, tmp_path):
    run = request.getfixturevalue(run_fixture)
    model = (run / rundir.MODEL_TFLITE).read_bytes()
    variants = byte_variants(model, 200, seed=2024) + graph_variants(model)
    result = run_trial(run, variants, tmp_path)
    _assert_clean(result)
