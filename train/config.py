"""Training options and their per-task defaults.

Any option left ``None`` takes the default of its task, chosen by measurement on
this project's 2-core machines (shared, load 5-10 while measuring):

- classification (BasicMotions): 64 units, Adam 3e-3 with warmup + cosine decay,
  batch 8, 60 epochs, full BPTT, loss over the last half of the steps: test
  accuracy 0.95-1.0 over seeds 0-4 (32 units: 0.75-0.9; loss at the last step
  only: 0.5-0.85), about 30 s wall clock.
- language model (fortunes): 384 units, embedding 32, batch 32, Adam 3e-3,
  35-step windows, trained for 3.5 minutes of wall clock (the cosine schedule
  follows the clock). Validation perplexity measured with 256 units and 4-minute
  budgets: batch 64 lr 2e-3 -> 6.04, batch 64 lr 4e-3 -> 5.84, batch 32 lr 3e-3
  -> 5.53, batch 32 lr 5e-3 -> 5.69, batch 16 lr 2e-3 -> 5.93; 128 units -> 6.07.
  With 3.5 minutes: 256 units -> 5.28, 384 -> 5.15, 512 -> 5.95 (too slow).
  256 units with ``--minutes 20`` reach 5.01 (Kneser-Ney order 5: 4.81).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from elman.train.model import MAX_LAYERS, RECURRENT_INITS

from elman.errors import ElmanError

SCHEDULES = ("cosine", "constant")
# Per-step classification (labels (N, T)) reads long streams in windows of this many steps
# unless --bptt says otherwise.
PER_STEP_BPTT = 100
FLOAT_OPTIONS = ("lr", "clip", "minutes", "warmup", "recurrent_scale", "weight_decay", "noise")

TASK_DEFAULTS = {
    "classification": {
        "units": 64,
        "embedding": 0,
        "lr": 3e-3,
        "batch": 8,
        "epochs": 60,
        "bptt": 0,
        "minutes": 0.0,
        "noise": 0.0,
        "loss_steps": None,  # resolved to half the sequence length by train_run
    },
    "language_model": {
        "units": 384,
        "embedding": 32,
        "lr": 3e-3,
        "batch": 32,
        "epochs": 20,  # upper bound: the time budget usually ends training first
        "bptt": 35,
        "minutes": 3.5,  # wall-clock budget: the whole run stays under 5 minutes
        "noise": 0.0,
        "loss_steps": 1,  # unused: every step has a target
    },
}


@dataclass(frozen=True)
class TrainConfig:
    """Options of ``elman train``; ``None`` means "the task's default"."""

    units: int | None = None
    layers: int = 1  # stacked SimpleRNN layers of ``units`` each (1-3)
    embedding: int | None = None  # text only
    lr: float | None = None  # peak learning rate (Adam)
    batch: int | None = None  # sequences per update, or parallel text streams
    epochs: int | None = None
    bptt: int | None = None  # window length; 0 = full sequence (classification)
    clip: float = 1.0  # global-norm threshold; 0 disables clipping
    seed: int = 0
    minutes: float | None = None  # training time budget (the schedule follows); 0 = none
    max_chars: int | None = None  # text: use only the first characters (quick runs)
    max_length: int | None = None  # sequences: keep the last N samples of longer ones
    schedule: str = "cosine"  # learning rate: linear warmup then cosine decay, or constant
    warmup: float = 0.02  # fraction of the updates spent warming up
    recurrent_init: str = "orthogonal"
    recurrent_scale: float = 1.0
    weight_decay: float = 0.0  # decoupled (AdamW); 0 = plain Adam
    loss_steps: int | None = None  # classification: the loss averages the last N steps
    noise: float | None = None  # std of Gaussian noise added to training inputs (sensor/npz)
    diagnostics: bool = True  # record gradient norms every update (and the distance curve)
    baseline: bool = True  # text: fit Kneser-Ney n-gram baselines

    def __post_init__(self):
        # NaN passes every comparison that validate() makes: refuse it (and inf) up front
        for name in FLOAT_OPTIONS:
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ElmanError(f"--{name.replace('_', '-')} must be a finite number, "
                                 f"got {value}")
        if self.max_length is not None and self.max_length < 1:
            raise ElmanError(f"--max-length must be >= 1, got {self.max_length}")

    def resolved(self, task: str) -> TrainConfig:
        """A copy with every ``None`` replaced by the task default, validated."""
        defaults = TASK_DEFAULTS[task]
        filled = {k: (v if v is not None else defaults.get(k)) for k, v in self.as_dict().items()}
        cfg = TrainConfig(**filled)
        cfg.validate(task)
        return cfg

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self, task: str) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ElmanError(message)

        need(self.units >= 1, f"--units must be >= 1, got {self.units}")
        need(1 <= self.layers <= MAX_LAYERS,
             f"--layers must be 1 to {MAX_LAYERS}, got {self.layers}")
        need(self.lr > 0, f"--lr must be > 0, got {self.lr}")
        need(self.batch >= 1, f"--batch must be >= 1, got {self.batch}")
        need(self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}")
        need(self.bptt >= 0, f"--bptt must be >= 0, got {self.bptt}")
        need(self.clip >= 0, f"--clip must be >= 0 (0 disables clipping), got {self.clip}")
        need(self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}")
        need(
            self.loss_steps is None or self.loss_steps >= 1,
            f"--loss-steps must be >= 1, got {self.loss_steps}",
        )
        need(self.noise >= 0, f"--noise must be >= 0, got {self.noise}")
        need(self.minutes >= 0, f"--minutes must be >= 0 (0: no time limit), got {self.minutes}")
        need(self.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}")
        need(0 <= self.warmup < 1, f"--warmup must be in [0, 1), got {self.warmup}")
        need(
            self.recurrent_init in RECURRENT_INITS,
            f"--recurrent-init must be one of {', '.join(RECURRENT_INITS)}",
        )
        if task == "language_model":
            need(self.embedding >= 1, f"--embedding must be >= 1, got {self.embedding}")
            need(self.bptt >= 1, "--bptt must be >= 1 for text (window length)")
