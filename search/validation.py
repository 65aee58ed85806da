"""The search's validation split, carved from the training data, and its metrics.

The search never looks at the test split. :func:`carve` takes the last
:data:`VALIDATION_FRACTION` of a seeded permutation of the training sequences
(text: the last tenth of the training text) as validation; a trial trains on
the rest. Its run directory stays a normal one: the model was trained on the
rest of the training split, ``data_spec.json`` names the same data source (with
the normalization of the part trained on), and later stages (``elman run
--from quantize``) report on the real test split as usual.

The search's objective is the quantized model's (int8, or the int16 state's)
metric on the validation split
(:func:`quantized_metric`, the bit-exact simulator of the chosen profile);
per-epoch pruning uses the float model's metric on it (:func:`float_metric`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from elman.data.datasets import (
    ClassificationData,
    RawClassification,
    RunData,
    TextData,
    load_dataset,
    load_raw,
    normalize,
)

from elman.errors import DataError

VALIDATION_FRACTION = 0.25  # of the training sequences
TEXT_VALIDATION_FRACTION = 0.1  # of the training text
VALIDATION_SEED = 1  # the test split of a file without one uses seed 0


@dataclass(frozen=True)
class SearchData:
    """What every trial trains on (``train``) and is judged on (the validation arrays)."""

    train: RunData  # training split minus validation; the real held-out split as test
    task: str
    x_val: np.ndarray | None = None  # classification: float32 (N, T, C), normalized
    y_val: np.ndarray | None = None  # (N,) or (N, T) per-step labels
    lengths_val: np.ndarray | None = None
    ids_val: np.ndarray | None = None  # text
    description: str = ""

    @property
    def metric_name(self) -> str:
        if self.task == "language_model":
            return "perplexity"
        return "per-step accuracy" if self.y_val.ndim == 2 else "accuracy"

    @property
    def direction(self) -> str:
        return "minimize" if self.task == "language_model" else "maximize"

    @property
    def worst(self) -> float:
        """The metric of a model that knows nothing (objective value of a trial never run)."""
        if self.task == "language_model":
            return float(len(self.train.vocab))
        return 0.0

    def dims(self) -> tuple[int, int, int]:
        """(input_dim before any embedding, output_dim, vocab_size)."""
        if isinstance(self.train, TextData):
            return 0, self.train.vocab_size, self.train.vocab_size
        return self.train.channels, len(self.train.classes), 0


def carve(spec: str) -> SearchData:
    """Load ``spec`` and split validation off its training data."""
    kind, sep, name = spec.partition(":")
    if not sep or not name:
        load_dataset(spec)  # raises the loader's own message for a malformed spec
    if kind == "text":
        return _carve_text(load_dataset(spec))
    raw = load_raw(kind, name)
    if not isinstance(raw, RawClassification):  # pragma: no cover - loaders return one of two
        raise DataError(f"{spec}: not sequence data")
    return _carve_sequences(raw)


def _carve_sequences(raw: RawClassification) -> SearchData:
    n = len(raw.y_train)
    if n < 4:
        raise DataError(f"{raw.source}: {n} training sequences are too few to split off a "
                        "validation set for the search")
    order = np.random.default_rng(VALIDATION_SEED).permutation(n)
    n_val = max(1, round(n * VALIDATION_FRACTION))
    fit, val = np.sort(order[:-n_val]), np.sort(order[-n_val:])
    described = (f"search validation: {n_val} of {n} training sequences (last "
                 f"{VALIDATION_FRACTION:.0%} of numpy default_rng({VALIDATION_SEED})."
                 f"permutation({n})); trained on the other {n - n_val}")
    info = {**raw.info, "search_validation": described}
    fitted = dataclasses.replace(raw, x_train=raw.x_train[fit], y_train=raw.y_train[fit],
                                 lengths_train=raw.lengths_train[fit], info=info)
    train = fitted.normalized()
    x_val = normalize(raw.x_train[val], train.mean, train.std, raw.lengths_train[val])
    return SearchData(train=train, task=train.task, x_val=x_val, y_val=raw.y_train[val],
                      lengths_val=raw.lengths_train[val], description=described)


def _carve_text(data: TextData) -> SearchData:
    n = len(data.train_ids)
    n_val = max(1000, int(n * TEXT_VALIDATION_FRACTION))
    if n - n_val < 2 * n_val:
        raise DataError(f"{data.source}: {n} training characters are too few to split off "
                        "a validation text for the search")
    described = (f"search validation: the last {n_val:,} of {n:,} training characters; "
                 f"trained on the first {n - n_val:,}")
    train = dataclasses.replace(data, train_ids=data.train_ids[:-n_val],
                                info={**data.info, "search_validation": described})
    return SearchData(train=train, task=data.task, ids_val=data.train_ids[-n_val:],
                      description=described)


def float_metric(trainer: Any, data: SearchData) -> float:
    """The float model's validation metric (TensorFlow; called after each epoch)."""
    if data.task == "language_model":
        from elman.train.stream_eval import stream_score

        return float(stream_score(trainer.model, data.ids_val)["perplexity"])
    from elman.train.loop import predict_classes

    per_step = data.y_val.ndim == 2
    logits = predict_classes(trainer, data.x_val, None if per_step else data.lengths_val,
                             every_step=per_step)
    return float((logits.argmax(axis=-1) == data.y_val).mean())


def quantized_metric(ir: Any, profile: str, data: SearchData) -> float:
    """The quantized model's validation metric (int8 or int16 state), computed by the
    bit-exact simulator of ``profile``."""
    from elman.runtime.simulator import Simulator

    sim = Simulator(ir, profile)
    if data.task == "language_model":
        from elman import perplexity

        inputs, targets = perplexity.stream_pairs(data.ids_val)
        y = sim.run_tokens(inputs[None, :]).y[0]
        logits = ir.output_quant.dequantize(y)
        return float(perplexity.score_logits(logits, targets)["perplexity"])
    from elman.quantize.task_metrics import classification_metrics, headline

    y = sim.run(ir.input_quant.quantize(data.x_val)).y
    return float(headline(classification_metrics(y, data.y_val, data.lengths_val))[1])


def is_classification(data: RunData) -> bool:
    return isinstance(data, ClassificationData)
