"""Several processes opening one new SQLite study database at the same instant (a search and
anything else reading its study.db) must all open it: Optuna's table creation races there."""

from __future__ import annotations

import multiprocessing as mp

from elman.search import study as studies


def _open(url: str, barrier, results) -> None:
    barrier.wait()
    try:
        studies.open_storage(url)
        results.put("ok")
    except Exception as exc:  # reported to the test
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_database_together_all_succeed(tmp_path):
    ctx = mp.get_context("spawn")
    for round_ in range(2):  # a fresh database each round: the race is at creation
        url = studies.local_url(tmp_path / f"r{round_}")
        (tmp_path / f"r{round_}").mkdir()
        barrier, results = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(url, barrier, results)) for _ in range(6)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert outcomes == ["ok"] * 6, outcomes
