"""Work beside training in a low-priority process: the text learning curve's scores and
the n-gram size curve.

TensorFlow keeps about 1.65 of a 2-core machine busy while it trains the text model.
The numpy work of a text run (scoring the whole validation stream after every epoch,
~3 s at 384 units; the pruned Kneser-Ney size curve, ~18 s) fits in the rest, but not
from a thread of the training process: there numpy's BLAS threads run at the
training's priority and fight TensorFlow's threads for the cores (measured: the
batch-64 default trained at 55k characters/s with them, its training step alone runs at
66-79k), and in line it adds its own time (~60 s).
:class:`Background` runs it in one spawned process at the lowest priority (nice 19)
with one BLAS thread, so it takes the cycles training leaves idle. Tasks run one at a
time, in the order submitted; :meth:`Background.result` waits for one.

The functions and their arguments cross a process boundary: module-level functions
and picklable values (numpy arrays, ``FloatElman``) only. No TensorFlow in the worker.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import traceback

NICE = 19
# one BLAS / OpenMP thread in the worker: a second one would take a core from training
_SINGLE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _serve(tasks, results) -> None:
    # a Ctrl-C reaches the whole process group: the training process stops this worker
    # (close / terminate; it is a daemon), so the worker itself ignores it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):  # not allowed: run at the training's priority
        os.nice(NICE)
    while True:
        item = tasks.get()
        if item is None:
            return
        task_id, fn, args = item
        try:
            results.put((task_id, True, fn(*args)))
        except BaseException:  # handed to result()
            results.put((task_id, False, traceback.format_exc()))


class BackgroundError(RuntimeError):
    """A task failed in the worker (its traceback is the message), or the worker died."""


class Background:
    """One low-priority worker process; ``submit`` tasks, then ``result`` them."""

    def __init__(self):
        ctx = multiprocessing.get_context("spawn")  # no copy of TensorFlow's threads
        self._tasks, self._results = ctx.Queue(), ctx.Queue()
        saved = {k: os.environ.get(k) for k in _SINGLE_THREAD}
        os.environ.update({k: "1" for k in _SINGLE_THREAD})
        try:
            self._process = ctx.Process(target=_serve, args=(self._tasks, self._results),
                                        daemon=True, name="elman-background")
            self._process.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self._submitted = 0
        self._done: dict[int, tuple[bool, object]] = {}

    def submit(self, fn, *args) -> int:
        """Queue ``fn(*args)``; returns the task's id for :meth:`result`."""
        task_id = self._submitted
        self._submitted += 1
        self._tasks.put((task_id, fn, args))
        return task_id

    def _collect(self, block: bool) -> bool:
        try:
            task_id, ok, value = self._results.get(timeout=1.0) if block else \
                self._results.get_nowait()
        except queue.Empty:
            return False
        self._done[task_id] = (ok, value)
        return True

    def ready(self, task_id: int) -> bool:
        """Whether the task has finished (without waiting)."""
        while task_id not in self._done and self._collect(block=False):
            pass
        return task_id in self._done

    def result(self, task_id: int):
        """The task's value (waiting for it), or :class:`BackgroundError`."""
        while task_id not in self._done:
            if (not self._collect(block=True) and not self._process.is_alive()
                    and not self._collect(block=False)):
                raise BackgroundError(
                    f"the background worker stopped (exit code {self._process.exitcode})")
        ok, value = self._done.pop(task_id)
        if not ok:
            raise BackgroundError(value)
        return value

    def close(self) -> None:
        """Stop the worker (tasks not yet run are dropped)."""
        if self._process.is_alive():
            with contextlib.suppress(OSError, ValueError):
                self._tasks.put(None)
            self._process.join(timeout=2.0)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=2.0)
        self._tasks.close()
        self._results.close()

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
