"""The search space: one :class:`Dimension` per line of :data:`DIMENSIONS`.

A dimension names the parameter, the tasks it applies to, where its value goes
(``train``: a :class:`~elman.train.config.TrainConfig` field; ``build``: code
generation, e.g. the arithmetic profile), whether it changes the model's size
(those are measured before training), and how Optuna suggests it from the
search's :class:`SpaceLimits`. Adding a dimension (say int16 state) is one more
line here, plus reading its value where it is used.

The state width (``state``: ``int8``, or ``int16``: 16x8, ``elman quantize
--state int16``) is searched like the profile: a ``build`` choice that changes
flash, RAM and instructions, so its random-weight model is measured before
training. :data:`STATES` lists the widths; ``--states`` narrows them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elman.quantize.ir import MAX_LAYERS

from elman.errors import ElmanError

CLASSIFICATION, TEXT = "classification", "language_model"
BOTH = (CLASSIFICATION, TEXT)
PROFILES = ("tflm", "tflite")
STATES = ("int8", "int16")
STATE_BITS = {"int8": 8, "int16": 16}


def parse_states(text: str) -> tuple[str, ...]:
    """``int8,int16`` -> ("int8", "int16") in :data:`STATES` order (one clear error else)."""
    names = [n.strip().lower() for n in str(text).split(",") if n.strip()]
    bad = [n for n in names if n not in STATES]
    if bad or not names:
        raise ElmanError(f"--states {text!r}: a comma-separated list of {', '.join(STATES)}")
    return tuple(s for s in STATES if s in names)


@dataclass(frozen=True)
class SpaceLimits:
    """The ranges a search explores (options of ``elman search``)."""

    min_units: int = 4
    max_units: int = 128
    max_layers: int = MAX_LAYERS  # stacked layers of ``units`` each, 1 to max_layers
    min_lr: float = 1e-3
    max_lr: float = 1e-2
    timesteps: int = 0  # classification: training sequence length (bptt windows below it)
    equal_length: bool = True
    states: tuple[str, ...] = STATES  # state widths tried

    def __post_init__(self) -> None:
        if not self.states or any(s not in STATES for s in self.states):
            raise ElmanError(f"state widths must be some of {', '.join(STATES)}, "
                             f"got {self.states}")
        if not 1 <= self.min_units <= self.max_units:
            raise ElmanError(f"--min-units {self.min_units} and --max-units {self.max_units} "
                             "must satisfy 1 <= min <= max")
        if not 1 <= self.max_layers <= MAX_LAYERS:
            raise ElmanError(f"--max-layers must be 1 to {MAX_LAYERS}, got {self.max_layers}")
        if not 0 < self.min_lr <= self.max_lr:
            raise ElmanError("learning-rate range must satisfy 0 < min <= max")

    def bptt_choices(self, task: str) -> tuple[int, ...]:
        if task == TEXT:
            return (16, 32, 64)
        if not self.equal_length:
            return (0,)  # windows need sequences of equal length
        return (0, *(w for w in (25, 50) if w < self.timesteps))


Suggest = Callable[[Any, SpaceLimits, str], Any]


@dataclass(frozen=True)
class Dimension:
    name: str
    tasks: tuple[str, ...]
    stage: str  # "train" (a TrainConfig field) or "build" (code generation)
    sized: bool  # changes flash / RAM / instructions (measured before training)
    suggest: Suggest  # (optuna trial, limits, task) -> value
    smallest: Callable[[SpaceLimits, str], tuple]  # the values of the smallest models


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("units", BOTH, "train", True,
              lambda t, s, _: t.suggest_int("units", s.min_units, s.max_units, log=True),
              lambda s, _: (s.min_units,)),
    Dimension("layers", BOTH, "train", True,
              lambda t, s, _: t.suggest_int("layers", 1, s.max_layers),
              lambda s, _: (1,)),
    Dimension("embedding", (TEXT,), "train", True,
              lambda t, s, _: t.suggest_categorical("embedding", (8, 16, 32)),
              lambda s, _: (8,)),
    Dimension("lr", BOTH, "train", False,
              lambda t, s, _: t.suggest_float("lr", s.min_lr, s.max_lr, log=True),
              lambda s, _: (s.min_lr,)),
    Dimension("bptt", BOTH, "train", False,
              lambda t, s, task: t.suggest_categorical("bptt", s.bptt_choices(task)),
              lambda s, task: (s.bptt_choices(task)[0],)),
    Dimension("profile", BOTH, "build", True,
              lambda t, s, _: t.suggest_categorical("profile", PROFILES),
              lambda s, _: PROFILES),
    Dimension("state", BOTH, "build", True,
              lambda t, s, _: t.suggest_categorical("state", s.states),
              lambda s, _: s.states),  # neither is smaller everywhere (int16: less flash)
)


def dimensions(task: str) -> tuple[Dimension, ...]:
    return tuple(d for d in DIMENSIONS if task in d.tasks)


def suggest(trial: Any, limits: SpaceLimits, task: str) -> dict[str, Any]:
    """Every parameter of one trial, suggested by Optuna's sampler."""
    return {d.name: d.suggest(trial, limits, task) for d in dimensions(task)}


def split(params: dict[str, Any], task: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training options, build options) of a trial's parameters."""
    dims = dimensions(task)
    train = {d.name: params[d.name] for d in dims if d.stage == "train"}
    build = {d.name: params[d.name] for d in dims if d.stage == "build"}
    return train, build


def shape_of(params: dict[str, Any], task: str) -> tuple[tuple[str, Any], ...]:
    """The parameters that decide flash, RAM and instructions (a cache key)."""
    return tuple((d.name, params[d.name]) for d in dimensions(task) if d.sized)


def smallest_shapes(limits: SpaceLimits, task: str) -> list[dict[str, Any]]:
    """The smallest model of each combination of the sized choices (e.g. one per profile):
    if none of them fits, nothing in the space does."""
    sized = [d for d in dimensions(task) if d.sized]
    values = [d.smallest(limits, task) for d in sized]
    return [dict(zip([d.name for d in sized], combo, strict=True))
            for combo in itertools.product(*values)]


def describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in params.items())
