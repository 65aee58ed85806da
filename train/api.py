"""``train_run``: data spec -> trained model.keras, data_spec.json, train_report.json, plots."""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from elman.data.datasets import ClassificationData, RunData, TextData, load_dataset
from elman.train.config import PER_STEP_BPTT, TrainConfig
from elman.train.limits import check_sizes

from elman import __version__, provenance, rundir
from elman.errors import DataError

REPORT_FORMAT = "elman-train-report/1"

__all__ = ["TrainConfig", "train_run"]


def train_run(
    data: str | RunData,
    run_dir: Path | str,
    config: TrainConfig | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict, Any], None] | None = None,
) -> dict:
    """Train on ``data`` (a spec such as ``sensor:basicmotions``, or data already
    loaded, e.g. a split of one's own) and write the run directory.

    ``on_epoch(row, trainer)`` is called after every epoch (an exception it raises
    stops training; nothing is written then).
    Returns the train report (also written as ``train_report.json``). Bad data or
    options raise :class:`~elman.errors.ElmanError` before anything is written.
    """
    config = config or TrainConfig()
    source = data if isinstance(data, str) else str(getattr(data, "source", data))
    stage_run = provenance.begin(run_dir, "train", rerun=["train", "--data", source])
    dataset = (load_dataset(data, max_chars=config.max_chars, max_length=config.max_length,
                            stride=config.stride, stride_mode=config.stride_mode,
                            deltas=config.deltas)
               if isinstance(data, str) else data)
    per_step = isinstance(dataset, ClassificationData) and dataset.y_train.ndim == 2
    if per_step and config.bptt is None:
        config = dataclasses.replace(config, bptt=min(PER_STEP_BPTT, dataset.timesteps))
    cfg = config.resolved(dataset.task)
    if config.epochs is None and isinstance(dataset, ClassificationData) and not per_step:
        # few sequences make few updates per epoch: the epochs follow the data
        cfg = dataclasses.replace(cfg, epochs=cfg.classifier_epochs(len(dataset.y_train),
                                                                    len(dataset.classes)))
    if cfg.loss_steps is None and (not isinstance(dataset, ClassificationData)
                                   or dataset.equal_length):
        # unequal lengths keep None: half of each sequence's own length
        steps = dataset.timesteps if isinstance(dataset, ClassificationData) else 1
        cfg = dataclasses.replace(cfg, loss_steps=max(1, steps // 2))
    _check_trainable(dataset, cfg)
    text = isinstance(dataset, TextData)
    check_sizes(cfg.units, cfg.embedding if text else dataset.channels,
                dataset.vocab_size if text else len(dataset.classes), batch=cfg.batch,
                steps=cfg.bptt if text or cfg.bptt else dataset.timesteps,
                vocab=dataset.vocab_size if text else 0, layers=cfg.layers)
    started = time.perf_counter()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from elman.quantize.keras_model import read_keras
    from elman.train import fit
    from elman.train.diagnostics import classification_curve, guarded, text_curve
    from elman.train.loop import Trainer
    from elman.train.model import build_model, last_step_classifier, parameter_count

    keras.utils.set_random_seed(cfg.seed)
    _deterministic_ops()
    text = isinstance(dataset, TextData)
    input_dim = dataset.vocab_size if text else dataset.channels
    output_dim = dataset.vocab_size if text else len(dataset.classes)
    model = build_model(
        dataset.task,
        units=cfg.units,
        input_dim=input_dim,
        output_dim=output_dim,
        embedding=cfg.embedding,
        recurrent_init=cfg.recurrent_init,
        recurrent_scale=cfg.recurrent_scale,
        sequence_outputs=True,
        layers=cfg.layers,
    )
    trainer = Trainer(
        model,
        dataset.task,
        lr=cfg.lr,
        clip=cfg.clip,
        record_norms=cfg.diagnostics,
        weight_decay=cfg.weight_decay,
        loss_steps=cfg.loss_steps,
        per_step=per_step,
        dropout_embedding=cfg.dropout_embedding,
        dropout_head=cfg.dropout_head,
        seed=cfg.seed,
        qat_weights=cfg.qat_weights,
        window=cfg.bptt if text else None,
    )
    # text: the learning curve's scores and the n-gram curve run beside training in a
    # worker process, closed however the run ends
    background = _background() if text and on_epoch is None else None
    try:
        if text:
            curve_task = None
            if background is not None and cfg.baseline:
                from elman.train.kneser_ney import size_curve

                curve_task = background.submit(size_curve, dataset.train_ids,
                                               dataset.val_ids, dataset.vocab_size)
            result = fit.fit_text(trainer, dataset, cfg, progress, on_epoch, background)
        elif per_step:
            result = fit.fit_per_step(trainer, dataset, cfg, progress, on_epoch)
        else:
            result = fit.fit_classification(trainer, dataset, cfg, progress, on_epoch)

        report: dict = {
            "format": REPORT_FORMAT,
            "task": dataset.task,
            "data": dataset.source,
            "config": cfg.as_dict(),
            "versions": _versions(),
            "model": _model_summary(model, parameter_count(model), cfg, input_dim, output_dim),
            "epochs": result.epochs,
            "stop_reason": result.stop_reason,
        }
        # Everything after training is guarded: a failure becomes a warning in the report,
        # never the loss of the trained model.
        warnings: list[str] = []
        if cfg.qat_weights and trainer.grid is None:  # stopped (clock) before the last fifth
            trainer.start_weight_grid()
            warnings.append("--qat-weights: training stopped before its last updates; the "
                            "weights were put on the int8 grid without fine-tuning (the last "
                            "epoch's metrics in the curves were measured before)")
        if text:
            report.update(guarded("the held-out metrics and n-gram baselines",
                                  lambda: _text_results(dataset, result, cfg.baseline,
                                                        progress, background, curve_task),
                                  warnings) or {})
    finally:
        if background is not None:
            background.close()
    curve: dict = {}
    if text:
        if cfg.diagnostics:
            curve = guarded("the vanishing-gradient curve", lambda: text_curve(
                read_keras(model, dataset.task).model, dataset.val_ids), warnings) or {}
    else:
        if not per_step:  # a per-step classifier is saved as trained (head at every step)
            model = last_step_classifier(model)
        report["metrics"] = guarded("the test-split metrics", lambda: _classification_metrics(
            trainer, dataset, result, per_step), warnings) or {}
        if cfg.diagnostics:
            curve = guarded("the vanishing-gradient curve", lambda: classification_curve(
                read_keras(model, dataset.task).model, dataset.x_test, dataset.y_test),
                warnings) or {}
    norms = np.array(result.grad_norms, dtype=np.float64)
    report["clipping"] = _clipping(norms, cfg.clip)
    report["weight_grid"] = _weight_grid(model, cfg, result)
    report["grad_norm_vs_distance"] = curve
    report["throughput"] = {
        "unit": "characters" if text else "sequence steps",
        "steps": result.steps,
        "updates": result.updates,
        "train_seconds": result.train_seconds,
        "steps_per_second": result.steps / result.train_seconds if result.train_seconds else 0.0,
        "total_seconds": time.perf_counter() - started,
    }
    report["warnings"] = warnings

    from elman.train.plots import plot_grad_vs_distance, plot_training_curves

    with stage_run.outputs() as stage:
        model.save(stage.path(rundir.MODEL_KERAS))
        stage.write_json(rundir.DATA_SPEC, dataset.spec())
        for name, what, plot in (
            (rundir.TRAIN_CURVES_PNG, "the training-curve plot",
             lambda path: plot_training_curves(report, norms[norms >= 0], path)),
            (rundir.GRAD_DISTANCE_PNG, "the vanishing-gradient plot",
             lambda path: plot_grad_vs_distance(curve, path)),
        ):
            path = stage.path(name)
            if guarded(what, lambda plot=plot, path=path: plot(path) or True, warnings) is None:
                path.unlink(missing_ok=True)
        stage.write_json(rundir.TRAIN_REPORT, report)
    return report


def _weight_grid(model, cfg: TrainConfig, result) -> dict:
    """Where the saved kernels sit against the converter's int8 grid (0: on it)."""
    from elman.train.weight_grid import QAT_FRACTION, grid_error, grid_kernels

    off = max(grid_error(v.numpy()) for v in grid_kernels(model))
    out: dict = {"qat_weights": cfg.qat_weights, "max_off_grid_steps": off,
                 "note": "max |w / scale - round(w / scale)| over every kernel (scale: max|w| "
                         "/ 127 per output channel, the converter's int8 weights); 0 means "
                         "the quantized weights are exactly the float model's"}
    if cfg.qat_weights:
        first = result.grid_from_update
        out.update(fraction=QAT_FRACTION, from_update=first,
                   updates_on_grid=None if first is None else result.updates - first)
    return out


def _deterministic_ops() -> None:
    """Same seed and options -> the same weights, run after run (TF's op determinism)."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def _background():
    """A :class:`~elman.train.background.Background` worker, or None (work in line) where
    a process cannot be started."""
    from elman.train.background import Background

    try:
        return Background()
    except (OSError, RuntimeError) as exc:
        import sys

        print(f"note: no background worker ({exc}); scoring in line", file=sys.stderr)
        return None


def _text_results(dataset: TextData, result, baseline: bool, progress: bool,
                  background=None, curve_task: int | None = None) -> dict:
    """The final validation metrics, and with ``baseline`` the Kneser-Ney baselines and
    size curve (~18 s of numpy on fortunes): computed by ``background`` during training
    when ``curve_task`` is given, else here."""
    from elman import perplexity

    last = result.epochs[-1]
    out: dict = {
        "metrics": {
            **{k: last[k] for k in ("val_loss", "val_perplexity", "val_bits_per_char",
                                    "train_loss")},
            "val_predictions": len(dataset.val_ids) - 1,
            "val_definition": perplexity.DEFINITION,
            "train_loss_note": "mean cross-entropy (nats) of the last epoch's training "
                               "windows, with dropout",
        }
    }
    if baseline:
        from elman.train.kneser_ney import baselines, size_curve

        if curve_task is not None:
            curve = background.result(curve_task)
        else:
            curve = size_curve(dataset.train_ids, dataset.val_ids, dataset.vocab_size,
                               progress=progress)
        out["baseline"] = baselines(curve)
        out["size_curve"] = curve
    return out


def _classification_metrics(trainer, dataset: ClassificationData, result,
                            per_step: bool = False) -> dict:
    from elman.quantize import task_metrics
    from elman.train.fit import confusion_matrix
    from elman.train.loop import predict_classes

    last = result.epochs[-1]
    if per_step:
        logits = predict_classes(trainer, dataset.x_test, every_step=True)
        metrics = task_metrics.classification_metrics(logits, dataset.y_test)
        return {
            "answers": "every step",
            "test_accuracy": metrics["per_step_accuracy"],
            "test_per_step_accuracy": metrics["per_step_accuracy"],
            "test_switch_delay": metrics["switch_delay"],
            "test_loss": last["test_loss"],
            "train_accuracy": last["train_accuracy"],
            "classes": list(dataset.classes),
            "confusion_matrix": confusion_matrix(dataset.y_test.reshape(-1),
                                                 logits.argmax(-1).reshape(-1),
                                                 len(dataset.classes)),
            "confusion_matrix_layout": "rows: true class, columns: predicted class (every "
                                       "step of every test stream)",
        }
    predicted = predict_classes(trainer, dataset.x_test, dataset.lengths_test).argmax(axis=1)
    return {
        "answers": "last step",
        "test_accuracy": float((predicted == dataset.y_test).mean()),
        "test_loss": last["test_loss"],
        "train_accuracy": last["train_accuracy"],
        "classes": list(dataset.classes),
        "confusion_matrix": confusion_matrix(dataset.y_test, predicted, len(dataset.classes)),
        "confusion_matrix_layout": "rows: true class, columns: predicted class",
    }


def _check_trainable(data: RunData, cfg: TrainConfig) -> None:
    if isinstance(data, TextData):
        need = cfg.batch * cfg.bptt + cfg.bptt + 1
        if len(data.train_ids) < need:
            raise DataError(
                f"{data.source}: {len(data.train_ids)} training characters are too few for "
                f"--batch {cfg.batch} streams of --bptt {cfg.bptt} steps (need {need})"
            )
        if len(data.val_ids) < 2:
            raise DataError(f"{data.source}: validation text is too short")
    elif cfg.bptt and not data.equal_length:
        lengths = np.concatenate([data.lengths_train, data.lengths_test])
        raise DataError(
            f"{data.source}: --bptt windows need sequences of equal length (these have "
            f"{lengths.min()} to {lengths.max()} steps); train with full BPTT (--bptt 0)")


def _clipping(norms: np.ndarray, threshold: float) -> dict:
    """Clipping summary; norms are -1 when neither clipping nor diagnostics needed them."""
    out: dict = {"threshold": threshold, "updates": int(len(norms))}
    if len(norms) == 0 or norms[0] < 0:
        out.update(
            fraction_clipped=None, clipped_updates=None, grad_norm=None, grad_norm_per_update=None
        )
        return out
    clipped = int((norms > threshold).sum()) if threshold > 0 else 0
    out.update(
        clipped_updates=clipped,
        fraction_clipped=clipped / len(norms),
        grad_norm={
            "min": float(norms.min()),
            "median": float(np.median(norms)),
            "mean": float(norms.mean()),
            "p90": float(np.percentile(norms, 90)),
            "max": float(norms.max()),
            "first": float(norms[0]),
            "last": float(norms[-1]),
        },
        grad_norm_per_update=[float(f"{v:.6g}") for v in norms],
    )
    return out


def _model_summary(model, params: int, cfg: TrainConfig, input_dim: int, output_dim: int) -> dict:
    weights = {w.path: int(math.prod(w.shape)) for w in model.trainable_weights}
    biases = sum(n for path, n in weights.items() if path.endswith("bias"))
    return {
        "units": cfg.units,
        "layers": cfg.layers,
        "input_dim": input_dim,
        "output_dim": output_dim,
        "embedding": cfg.embedding,
        "parameters": params,
        "float32_bytes": 4 * params,
        "int8_bytes": (params - biases) + 4 * biases,
        "int8_bytes_note": "int8 weights and embedding, int32 biases (estimate)",
    }


def _versions() -> dict:
    import keras
    import tensorflow as tf

    return {
        "elman": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
