"""Epoch loops for both tasks, the learning-rate schedule, and per-epoch metrics.

Imports TensorFlow (through :mod:`elman.train.loop`): import lazily.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf
from elman.data.datasets import ClassificationData, TextData
from elman.train.config import TrainConfig
from elman.train.loop import (
    Trainer,
    classification_windows,
    loss_weights,
    predict_classes,
    stream_windows,
    window_count,
)
from tqdm import tqdm

# text: the most epochs the learning curve scores on the validation stream (evenly spaced)
CURVE_POINTS = 12
# called after every epoch with the epoch's row and the trainer (e.g. to score a
# validation split and stop a weak run by raising)
EpochCallback = Callable[[dict, Trainer], None]


@dataclass
class FitResult:
    epochs: list[dict] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    steps: int = 0  # time steps (characters) processed by training updates
    updates: int = 0
    train_seconds: float = 0.0
    stop_reason: str = "epochs"
    grid_from_update: int | None = None  # --qat-weights: the first update on the int8 grid


class Schedule:
    """Linear warmup, then cosine decay to zero (or constant), by update count or time."""

    def __init__(self, cfg: TrainConfig, total_updates: int):
        self.peak, self.kind, self.warmup = cfg.lr, cfg.schedule, cfg.warmup
        self.total = max(total_updates, 1)
        self.budget = cfg.minutes * 60 if cfg.minutes else None
        self.start = time.perf_counter()

    def progress(self, update: int) -> float:
        p = update / self.total
        if self.budget:
            p = max(p, (time.perf_counter() - self.start) / self.budget)
        return min(p, 1.0)

    def lr(self, update: int) -> float:
        if self.kind == "constant":
            return self.peak
        p = self.progress(update)
        if self.warmup > 0 and p < self.warmup:
            return self.peak * max(p / self.warmup, 1.0 / self.total)
        q = (p - self.warmup) / (1.0 - self.warmup)
        return self.peak * 0.5 * (1.0 + math.cos(math.pi * min(q, 1.0)))

    def on_grid_from(self, update: int) -> bool:
        """--qat-weights: whether ``update`` is in the last ``QAT_FRACTION`` of training
        (by update count or by the clock), or the last update."""
        from elman.train.weight_grid import QAT_FRACTION

        return self.progress(update) >= 1.0 - QAT_FRACTION or update >= self.total - 1

    def out_of_time(self) -> bool:
        return self.budget is not None and time.perf_counter() - self.start >= self.budget


def _train_update(trainer, schedule, result, x, y, h, *weights):
    trainer.set_lr(schedule.lr(result.updates))
    if trainer.qat_weights and trainer.grid is None and schedule.on_grid_from(result.updates):
        trainer.start_weight_grid()
        result.grid_from_update = result.updates
    loss, norm, h = trainer.train_step(x, y, h, *weights)
    if trainer.grid is not None:
        trainer.grid.after_update()
    result.updates += 1
    result.grad_norms.append(norm)
    return float(loss), h


def _epoch_norm_stats(result: FitResult, first: int, clip: float) -> dict:
    norms = np.array([float(n) for n in result.grad_norms[first:]])
    result.grad_norms[first:] = norms.tolist()
    if len(norms) == 0 or norms[0] < 0:
        return {}
    return {
        "grad_norm_mean": float(norms.mean()),
        "fraction_clipped": float((norms > clip).mean()) if clip > 0 else 0.0,
    }


def text_updates(cfg: TrainConfig, train_chars: int) -> int:
    """Updates of a text run: ``chars`` / (batch x bptt), or ``epochs`` full passes."""
    if cfg.epochs is not None:
        return window_count(train_chars - cfg.bptt, cfg.batch, cfg.bptt) * cfg.epochs
    return max(1, math.ceil(cfg.chars / (cfg.batch * cfg.bptt)))


def fit_text(trainer: Trainer, data: TextData, cfg: TrainConfig, progress: bool,
             on_epoch: EpochCallback | None = None, background=None) -> FitResult:
    """Truncated BPTT for a fixed number of updates (the amount of work), in epochs.

    Each epoch starts at a random offset with a zero state; the last one may be
    partial. After every epoch the model is scored on the validation stream with the
    one definition of :mod:`elman.perplexity` (the learning curve). With ``background``
    (a :class:`~elman.train.background.Background`) the score of a copy of the epoch's
    weights runs in that low-priority process while the next epoch trains, and each
    row is completed (and its progress line printed) when its score arrives; the last
    one is waited for. Without it, each epoch is scored in line (the numbers are the
    same either way: the copy is fixed when the epoch ends).
    Runs longer than :data:`CURVE_POINTS` passes score every k-th epoch (and the last),
    k = ceil(passes / CURVE_POINTS); the other rows have no ``val_*`` keys.
    ``on_epoch`` (which may stop the run by raising) scores in line and sees every epoch.
    """
    import copy

    from elman.quantize.keras_model import read_keras
    from elman.train.stream_eval import float_stream_score

    if on_epoch is not None:
        background = None
    pending: list[tuple[dict, int]] = []  # rows waiting for their background score

    total = text_updates(cfg, len(data.train_ids))
    # a learning curve of at most CURVE_POINTS scored epochs (and always the last): the
    # long recipe's 40 passes would otherwise spend minutes scoring
    passes = -(-total // max(window_count(len(data.train_ids), cfg.batch, cfg.bptt), 1))
    every = 1 if on_epoch is not None else max(1, -(-passes // CURVE_POINTS))
    schedule = Schedule(cfg, total)
    rng = np.random.default_rng(cfg.seed)
    result = FitResult()
    bar = tqdm(total=total, disable=not progress, leave=False, desc="training", unit="update")

    def finish(row: dict, scored: dict) -> None:
        row.update(val_loss=scored["nll"], val_perplexity=scored["perplexity"],
                   val_bits_per_char=scored["bits_per_char"])
        if on_epoch is not None:
            on_epoch(row, trainer)
        if progress:
            tqdm.write(
                f"epoch {row['epoch']} ({row['chars'] / 1e6:.1f}M chars): train loss "
                f"{row['train_loss']:.4f}, validation perplexity {row['val_perplexity']:.3f} "
                f"({row['val_bits_per_char']:.3f} bpc)"
            )

    epoch = 0
    while result.updates < total and result.stop_reason == "epochs":
        epoch += 1
        offset = int(rng.integers(cfg.bptt))
        h = trainer.zero_state(cfg.batch)
        losses, first, steps = [], len(result.grad_norms), 0
        t0 = time.perf_counter()
        for x, y in stream_windows(data.train_ids, cfg.batch, cfg.bptt, offset):
            loss, h = _train_update(trainer, schedule, result, x, y, h)
            losses.append(loss)
            steps += x.size
            bar.update()
            if len(losses) % 50 == 0:
                bar.set_postfix(epoch=epoch, loss=f"{np.mean(losses[-50:]):.3f}")
            if schedule.out_of_time():
                result.stop_reason = f"time budget of {cfg.minutes:g} minutes"
            if result.updates >= total or result.stop_reason != "epochs":
                break
        result.steps += steps
        result.train_seconds += time.perf_counter() - t0
        row = {
            "epoch": epoch,
            "chars": result.steps,
            "train_loss": float(np.mean(losses)),
            "lr_end": schedule.lr(result.updates),
            "updates": len(losses),
            "seconds": time.perf_counter() - t0,
            **_epoch_norm_stats(result, first, cfg.clip),
        }
        result.epochs.append(row)
        last = result.updates >= total or result.stop_reason != "epochs"
        if epoch % every == 0 or last:
            weights = read_keras(trainer.model, "language_model").model
            if background is None:
                finish(row, float_stream_score(weights, data.val_ids))
            else:
                task = background.submit(float_stream_score, copy.deepcopy(weights),
                                         data.val_ids)
                pending.append((row, task))
        while pending and (last or background.ready(pending[0][1])):
            row, task = pending.pop(0)
            finish(row, background.result(task))
    bar.close()
    return result


def fit_classification(
    trainer: Trainer, data: ClassificationData, cfg: TrainConfig, progress: bool,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    n = len(data.y_train)
    batch = min(cfg.batch, n)
    per_epoch = -(-n // batch)
    schedule = Schedule(cfg, per_epoch * cfg.epochs)
    rng = np.random.default_rng(cfg.seed)
    result = FitResult()
    bar = tqdm(range(1, cfg.epochs + 1), disable=not progress, leave=False, unit="epoch")
    for epoch in bar:
        order = rng.permutation(n)
        losses, first = [], len(result.grad_norms)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            idx = order[i : i + batch]
            lengths = data.lengths_train[idx]
            xb = data.x_train[idx, : int(lengths.max())]  # padding at the end only
            if cfg.noise > 0:
                xb = xb + rng.normal(0.0, cfg.noise, xb.shape).astype(np.float32)
            windows = classification_windows(xb, cfg.bptt)
            h = trainer.zero_state(len(idx))
            for w in windows[:-1]:
                _, h = trainer.forward(w, h)
            weights = loss_weights(lengths, xb.shape[1], cfg.loss_steps)[:, -windows[-1].shape[1]:]
            loss, _ = _train_update(trainer, schedule, result, windows[-1], data.y_train[idx], h,
                                    weights)
            losses.append(loss)
            result.steps += int(lengths.sum())
        metrics = {
            **_split_metrics(trainer, data.x_train, data.y_train, data.lengths_train, "train"),
            **_split_metrics(trainer, data.x_test, data.y_test, data.lengths_test, "test")}
        if _end_epoch(result, epoch, losses, first, t0, metrics, schedule, cfg, bar,
                      on_epoch, trainer):
            break
    return result


def _end_epoch(result: FitResult, epoch: int, losses: list[float], first: int, t0: float,
               metrics: dict, schedule: Schedule, cfg: TrainConfig, bar,
               on_epoch: EpochCallback | None = None, trainer: Trainer | None = None) -> bool:
    """Record a classifier's epoch (time, loss, metrics, norms); True when out of time."""
    result.train_seconds += time.perf_counter() - t0
    row = {
        "epoch": epoch,
        "train_loss": float(np.mean(losses)),
        **metrics,
        "lr_end": schedule.lr(result.updates),
        "seconds": time.perf_counter() - t0,
        **_epoch_norm_stats(result, first, cfg.clip),
    }
    result.epochs.append(row)
    if on_epoch is not None:
        on_epoch(row, trainer)
    bar.set_postfix(loss=f"{row['train_loss']:.3f}", test_acc=f"{row['test_accuracy']:.3f}")
    if schedule.out_of_time():
        result.stop_reason = f"time budget of {cfg.minutes} minutes"
        return True
    return False


def fit_per_step(
    trainer: Trainer, data: ClassificationData, cfg: TrainConfig, progress: bool,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Per-step classification (labels (N, T)): every stream in windows of ``cfg.bptt``
    steps (0: whole streams), state carried between windows, one update per window."""
    n = len(data.y_train)
    batch = min(cfg.batch, n)
    steps = data.timesteps
    bptt = cfg.bptt or steps
    per_epoch = -(-n // batch) * -(-steps // bptt)
    schedule = Schedule(cfg, per_epoch * cfg.epochs)
    rng = np.random.default_rng(cfg.seed)
    result = FitResult()
    bar = tqdm(range(1, cfg.epochs + 1), disable=not progress, leave=False, unit="epoch")
    for epoch in bar:
        order = rng.permutation(n)
        losses, first = [], len(result.grad_norms)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            idx = order[i : i + batch]
            xb, yb = data.x_train[idx], data.y_train[idx]
            if cfg.noise > 0:
                xb = xb + rng.normal(0.0, cfg.noise, xb.shape).astype(np.float32)
            h = trainer.zero_state(len(idx))
            for start in range(0, steps, bptt):
                window = slice(start, start + bptt)
                loss, h = _train_update(trainer, schedule, result, xb[:, window], yb[:, window], h)
                losses.append(loss)
            result.steps += len(idx) * steps
        metrics = {**_per_step_metrics(trainer, data.x_train, data.y_train, "train"),
                   **_per_step_metrics(trainer, data.x_test, data.y_test, "test")}
        if _end_epoch(result, epoch, losses, first, t0, metrics, schedule, cfg, bar,
                      on_epoch, trainer):
            break
    return result


def _per_step_metrics(trainer: Trainer, x: np.ndarray, y: np.ndarray, name: str) -> dict:
    """Loss and accuracy over every step of every stream (from zero states)."""
    logits = predict_classes(trainer, x, every_step=True)
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    return {
        f"{name}_loss": float(tf.reduce_mean(nll)),
        f"{name}_accuracy": float((logits.argmax(axis=-1) == y).mean()),
    }


def _split_metrics(trainer: Trainer, x: np.ndarray, y: np.ndarray, lengths: np.ndarray,
                   name: str) -> dict:
    logits = predict_classes(trainer, x, lengths)
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    return {
        f"{name}_loss": float(tf.reduce_mean(nll)),
        f"{name}_accuracy": float((logits.argmax(axis=1) == y).mean()),
    }


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> list[list[int]]:
    """Rows: true class; columns: predicted class."""
    m = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m.tolist()
