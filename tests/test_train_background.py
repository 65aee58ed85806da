"""The low-priority worker that scores a text model's learning curve beside training."""

import os
import signal

import numpy as np
import pytest
from elman.train.background import NICE, Background, BackgroundError
from elman.train.config import TrainConfig


def test_tasks_run_in_order_at_low_priority_with_one_blas_thread():
    before = os.environ.get("OPENBLAS_NUM_THREADS")
    with Background() as bg:
        assert os.environ.get("OPENBLAS_NUM_THREADS") == before  # only the worker's changed
        first = bg.submit(sum, [1, 2, 3])
        nice = bg.submit(os.getpriority, os.PRIO_PROCESS, 0)
        threads = bg.submit(os.getenv, "OPENBLAS_NUM_THREADS")
        sigint = bg.submit(signal.getsignal, signal.SIGINT)  # Ctrl-C: the parent stops it
        failing = bg.submit(int, "not a number")
        after = bg.submit(max, [4, 9, 2])
        assert bg.result(after) == 9  # later results wait in the queue for their turn
        assert bg.result(first) == 6
        assert bg.result(nice) == min(os.getpriority(os.PRIO_PROCESS, 0) + NICE, 19)
        assert bg.result(threads) == "1"
        assert bg.result(sigint) == signal.SIG_IGN
        with pytest.raises(BackgroundError, match="ValueError: invalid literal for int"):
            bg.result(failing)


def test_a_worker_that_dies_is_an_error_not_a_hang():
    with Background() as bg:
        task = bg.submit(os._exit, 3)
        with pytest.raises(BackgroundError, match="stopped \\(exit code 3\\)"):
            bg.result(task)


def test_scores_beside_training_equal_scores_in_line(tmp_path, monkeypatch):
    """The learning curve and the n-gram baselines are the same numbers whether the worker
    computes them or the training process does (``_background`` returning None)."""
    import elman.train.api as api

    cfg = TrainConfig(units=16, embedding=8, batch=4, bptt=10, max_chars=3000, chars=8000,
                      diagnostics=False)
    beside = api.train_run("text:fortunes", tmp_path / "beside", cfg, progress=False)
    monkeypatch.setattr(api, "_background", lambda: None)
    inline = api.train_run("text:fortunes", tmp_path / "inline", cfg, progress=False)
    curve = [e["val_perplexity"] for e in beside["epochs"]]
    assert len(curve) == len(inline["epochs"]) >= 2
    np.testing.assert_allclose(curve, [e["val_perplexity"] for e in inline["epochs"]],
                               rtol=1e-6)
    assert beside["metrics"]["val_perplexity"] == curve[-1]
    assert beside["baseline"] == inline["baseline"]
    assert beside["size_curve"] == inline["size_curve"]
    assert beside["baseline"]["kn5"]["val_perplexity"] > 1
