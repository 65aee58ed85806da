"""Shared fixtures: small runs trained on REAL data and quantized, built once per test session.

``bm_run``
    A run directory trained on real BasicMotions (``TrainConfig(units=16,
    epochs=60, lr=1e-2, seed=0)``, no diagnostics; ~92% test accuracy) and
    quantized: ``model.keras``, ``data_spec.json``, ``train_report.json``, the plots,
    ``model_int8.tflite``,
    ``quant_report.json``. 6 inputs, 16 units, 4 classes, 40 test sequences x 100 steps.
``text_run``
    The same for a character model on the first 20,000 characters of the real
    fortunes corpus (``units=24, embedding=8, epochs=2, batch=16, bptt=35``; the
    validation stream is its first 2,222 characters). Vocabulary of the whole
    corpus (~100 tokens).

``random_step_tflite`` results are also cached per session across xdist workers
(``ELMAN_RANDOM_STEP_CACHE``, set by an autouse fixture).

Each run is built once per session even under ``pytest -n 2``: the directory lives
under the session's shared temporary root and the build holds an exclusive
``fcntl.flock``; the other worker waits, then reuses it. Tests must not modify
these directories (copy them first: ``shutil.copytree(bm_run, tmp_path / "run")``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

# Tests choose the simulator engine themselves (the default is the compiled one).
os.environ.pop("ELMAN_SIMULATOR_ENGINE", None)

BM_CONFIG = {"units": 16, "epochs": 60, "lr": 1e-2, "seed": 0, "diagnostics": False}
TEXT_CONFIG = {"units": 24, "embedding": 8, "epochs": 2, "batch": 16, "bptt": 35, "seed": 0,
               "max_chars": 20_000, "diagnostics": False, "baseline": False}


def _shared_root(factory: pytest.TempPathFactory) -> Path:
    base = factory.getbasetemp()
    # under xdist every worker has its own basetemp inside the session's directory
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "elman-fixtures"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _cached_run(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    root = _shared_root(factory)
    run, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.exists():
                shutil.rmtree(run, ignore_errors=True)
                build(run)
                done.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return run


def _train_and_quantize(data: str, config: dict, **quantize_kwargs) -> Callable[[Path], None]:
    def build(run: Path) -> None:
        from elman.quantize.api import quantize_run
        from elman.train.api import TrainConfig, train_run

        train_run(data, run, TrainConfig(**config), progress=False)
        quantize_run(run, progress=False, **quantize_kwargs)

    return build


@pytest.fixture(scope="session", autouse=True)
def _random_step_cache(tmp_path_factory):
    """Share random_step_tflite conversions between the session's workers."""
    from elman.quantize.testing import CACHE_ENV

    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(_shared_root(tmp_path_factory) / "random-step-models")
    yield
    if old is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = old


@pytest.fixture(scope="session")
def bm_run(tmp_path_factory) -> Path:
    """A quantized 16-unit BasicMotions run (real data); read-only."""
    return _cached_run(tmp_path_factory, "bm_run",
                       _train_and_quantize("sensor:basicmotions", BM_CONFIG))


@pytest.fixture(scope="session")
def text_run(tmp_path_factory) -> Path:
    """A quantized 24-unit character model on real fortunes text; read-only."""
    return _cached_run(tmp_path_factory, "text_run",
                       _train_and_quantize("text:fortunes", TEXT_CONFIG))
