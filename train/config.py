"""Training options and their per-task defaults.

Any option left ``None`` takes the default of its task (for text: of its recipe,
``--budget``), chosen by measurement on this project's 2-core machines:

- classification (BasicMotions): 64 units, Adam 3e-3 with warmup + cosine decay,
  batch 8, 60 epochs, full BPTT, loss over the last half of the steps: test
  accuracy 0.95-1.0 over seeds 0-4 (32 units: 0.75-0.9; loss at the last step
  only: 0.5-0.85), about 30 s wall clock.
  Hard data (``bench/data_defaults.py``, chosen on a validation fold carved from the
  training split, never the test split): Gaussian input noise 0.1 (GunPoint's float
  model no longer underfits its way to 0.77), and at least 150 updates per class
  (``updates_per_class``: PickupGestureWiimoteZ, 10 classes of 5 training sequences,
  made 300 updates in 60 epochs and underfit at 0.40 training accuracy), and at least
  1,000 updates in all (GunPoint, 2 classes: 300 updates left it at 0.70 training
  accuracy); the epochs rise only when ``--epochs`` is not given. Sequences with a
  median length over 128 samples are read at a stride (``elman.data.sequences``), and
  where that stride stacks a step's samples, each sample is followed by its first
  difference (``--deltas auto``; GunPoint's validation folds 0.966 against 0.947).
  Batch 16 scored better on GunPoint's validation folds (0.940 against 0.906) but not
  on BasicMotions', and worse on GunPoint's test split (README); the training-loop
  variants tried (augmentation, weight averaging, restarts) are in
  ``bench/data_variants.py``.
- language model: a fixed amount of work (``chars``: training characters, so
  that two machines train the same model); the recipes and the measurements that
  chose them are in :data:`TEXT_RECIPES` and ``bench/lm_recipes.py``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from elman.data.sequences import (
    DEFAULT_DELTAS,
    DEFAULT_STRIDE_MODE,
    STRIDE_MODE_CHOICES,
    check_deltas,
    check_stride_mode,
)
from elman.train.model import MAX_LAYERS, RECURRENT_INITS

from elman.errors import ElmanError

SCHEDULES = ("cosine", "constant")
# Per-step classification (labels (N, T)) reads long streams in windows of this many steps
# unless --bptt says otherwise.
PER_STEP_BPTT = 100
FLOAT_OPTIONS = ("lr", "clip", "minutes", "warmup", "recurrent_scale", "weight_decay", "noise")

BUDGETS = ("default", "long")

# Text recipes (bench/lm_recipes.py measures them on a tuning split carved from the
# training text; bench/text_default.py times them as a user runs them). "chars" is the
# amount of training. On the tuning split (16M characters each; Kneser-Ney order 5:
# 4.868): batch 64 at 4e-3 matches batch 32 (4.995 vs 4.994) for 24% less CPU, an
# embedding of 64 beats 32 (4.945), dropout 0.1 hurts (5.392: the model underfits at
# this amount of work), 70-step windows and 512 units at equal compute do not help.
# Batch 128 at 5e-3 beats batch 64 at 4e-3 on the same 28M characters (4.832 against
# 4.850; 7e-3: 4.869) and trains 1.1-1.2x the characters per second. That default took
# 460 s on an idle 2-core machine (4.755 on the validation split), the host running at
# 72k characters/s. At 22M characters an embedding of 128 reaches 4.812 (64: 4.880) for
# 11% more CPU per character: the default is embedding 128 for 9 passes (20.9M).
TEXT_RECIPES = {
    "default": {
        "units": 384,
        "embedding": 128,
        "lr": 5e-3,
        "batch": 128,
        "bptt": 35,
        "chars": 20_885_760,  # 9 passes of 518 updates (the last one of 19 steps)
        "dropout_embedding": 0.0,
        "dropout_head": 0.0,
        # AdamW (2026-12-02): 4.811 against 4.821 on the tuning split, 4.736 against 4.759
        # on the validation split (0.01: 4.736, 0.1: 4.758), for the same CPU
        "weight_decay": 0.03,
    },
    # The default's recipe with 3.4x the work and mild dropout on the head's input,
    # since the default already ends with training loss 0.08 nats below validation
    # loss. Measured at the default's 4e-3 (bench/text_default.py --budget long,
    # 2026-12-01): it diverged, validation perplexity 5.83 after 7M characters rising
    # to 8.73 at 28M and ending at 7.72, since the cosine schedule over 96M characters
    # keeps the rate near its peak three times longer. At peak 2e-3 (equal to 4e-3 at
    # 16M characters on the tuning split, 5.002 against 4.994) it reaches 4.7195 on the
    # validation split (2026-12-01): 1.8% below Kneser-Ney order 5, not the 3% aimed
    # at; training loss 1.489 against validation 1.552 nats: 384 units near capacity.
    # A wider long recipe did worse (2026-12-01): 512 units at batch 128, 90M characters,
    # peak 3e-3, dropout 0.1 on the head's input reached 4.7315 (1.6% below order 5)
    # in 3,203 s of CPU (~32 minutes on an idle 2-core machine), against 4.7195 here.
    # The embedding is 128, as in the default (on the tuning split at 22M characters:
    # 4.812 against 64's 4.880): 4.6757 on the validation split (2026-12-01), 2.7% below
    # order 5, int8 +0.0038 bits/char, 3,056 s of CPU (~31 minutes on an idle 2-core
    # machine at 1.65 cores; 2,890 s wall here under load).
    # Batch 128 (peak 2.5e-3, the same 96M characters; batch 128 trained 1.1-1.2x the
    # characters per second and beat batch 64 at the default's length on the tuning split)
    # did worse at this length (2026-12-01, fourth stop): 4.6834 on the validation split,
    # 2.6% below order 5, int8 +0.0031 bits/char; 2,435 s wall, 3,850 s CPU beside other
    # work. Learning curve: 9.3M 5.402, 18.5M 5.135, 27.8M 5.045, 37.1M 4.981, 46.4M 4.899,
    # 55.6M 4.821, 64.9M 4.768, 74.2M 4.726, 83.5M 4.699, 92.7M 4.683, 95.9M 4.683.
    # This recipe at 120M characters (2026-12-02, the unrolled recurrence, an AVX2 host
    # about 2x slower than the one above): 4.670, 2.85% below order 5, still short of 3%
    # (4.663), for 25% more work: 6,240 s of CPU, 3,923 s wall (65 minutes here, partly
    # beside other work). Learning curve: 11.6M 5.367, 23.2M 5.189, 34.8M 5.148, 46.4M
    # 5.085, 58.0M 5.008, 69.6M 4.893, 81.2M 4.803, 92.7M 4.724, 104.3M 4.684, 120M 4.670.
    # The recipe stays at 96M: the 0.006 is not worth a quarter more time.
    # Weight decay (AdamW) is what it lacked (2026-12-02, an AVX-512 host training 83k
    # characters/s at batch 64 on one thread; validation split): 0.03 reaches 4.641 at 96M
    # (3.46% below order 5; 0.015: 4.649, 0.1: 4.672, none: 4.6757) and 4.617 at 120M
    # (3.95%), where head dropout 0.1 instead reached 4.771. Each ran 19 (96M) or 24
    # (120M) minutes on one core. The tuning split (bench/lm_recipes.py) agrees: see the
    # README. At 96M its last pass's training loss is about the same (1.484 nats against
    # 1.489 without) and its validation loss lower (1.535 against 1.543).
    "long": {
        "units": 384,
        "embedding": 128,
        "lr": 2e-3,
        "batch": 64,
        "bptt": 35,
        "chars": 96_000_000,
        "dropout_embedding": 0.0,
        "dropout_head": 0.05,
        "weight_decay": 0.03,
    },
}

TASK_DEFAULTS = {
    "classification": {
        "units": 64,
        "embedding": 0,
        "lr": 3e-3,
        "batch": 8,
        "epochs": 60,
        "bptt": 0,
        "minutes": 0.0,
        "noise": 0.1,
        "updates_per_class": 150,  # epochs rise to make at least this many updates per class
        "min_updates": 1000,  # ... and at least this many in all
        "loss_steps": None,  # resolved to half the sequence length by train_run
        "chars": None,
        "dropout_embedding": 0.0,
        "dropout_head": 0.0,
        "weight_decay": 0.0,
    },
    "language_model": {
        **TEXT_RECIPES["default"],
        "epochs": None,  # the amount of training is "chars" unless --epochs is given
        "minutes": 0.0,  # no wall-clock limit: the same work on every machine
        "noise": 0.0,
        "updates_per_class": 0,
        "min_updates": 0,
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
    epochs: int | None = None  # text: an amount of training instead of ``chars``
    chars: int | None = None  # text: training characters (the default amount of work)
    budget: str = "default"  # text recipe: default | long
    bptt: int | None = None  # window length; 0 = full sequence (classification)
    clip: float = 1.0  # global-norm threshold; 0 disables clipping
    seed: int = 0
    minutes: float | None = None  # wall-clock budget (the schedule follows); 0 = none
    max_chars: int | None = None  # text: use only the first characters (quick runs)
    max_length: int | None = None  # sequences: keep the last N samples of longer ones
    stride: int | None = None  # sequences: read at 1/k of their rate; None: from the lengths
    stride_mode: str = DEFAULT_STRIDE_MODE  # auto | mean | sample | stack (data.sequences)
    deltas: str = DEFAULT_DELTAS  # auto | on | off: each sample and its first difference
    schedule: str = "cosine"  # learning rate: linear warmup then cosine decay, or constant
    warmup: float = 0.02  # fraction of the updates spent warming up
    recurrent_init: str = "orthogonal"
    recurrent_scale: float = 1.0
    weight_decay: float | None = None  # decoupled (AdamW); 0 = plain Adam
    dropout_embedding: float | None = None  # text: dropout on the embedded characters
    dropout_head: float | None = None  # dropout on the head's input (the hidden states)
    loss_steps: int | None = None  # classification: the loss averages the last N steps
    noise: float | None = None  # std of Gaussian noise added to training inputs (sensor/npz)
    # classification without --epochs: epochs rise until training makes at least
    # updates_per_class x classes updates (0: just ``epochs``)
    updates_per_class: int | None = None
    min_updates: int | None = None  # ... and at least this many updates in all
    diagnostics: bool = True  # record gradient norms every update (and the distance curve)
    baseline: bool = True  # text: fit Kneser-Ney n-gram baselines
    # the last updates train the weights on the int8 grid (elman.train.weight_grid): the
    # saved float model's weights are exactly what the converter stores
    qat_weights: bool = False

    def __post_init__(self):
        # NaN passes every comparison that validate() makes: refuse it (and inf) up front
        for name in FLOAT_OPTIONS:
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ElmanError(f"--{name.replace('_', '-')} must be a finite number, "
                                 f"got {value}")
        if self.max_length is not None and self.max_length < 1:
            raise ElmanError(f"--max-length must be >= 1, got {self.max_length}")
        if self.stride is not None and self.stride < 1:
            raise ElmanError(f"--stride must be >= 1, got {self.stride}")
        check_deltas(self.deltas)
        check_stride_mode(self.stride_mode, STRIDE_MODE_CHOICES)

    def resolved(self, task: str) -> TrainConfig:
        """A copy with every ``None`` replaced by the task default, validated."""
        if self.budget not in BUDGETS:
            raise ElmanError(f"--budget must be one of {', '.join(BUDGETS)}, got {self.budget!r}")
        defaults = dict(TASK_DEFAULTS[task])
        if task == "language_model":
            defaults.update(TEXT_RECIPES[self.budget])
            if self.epochs is not None and self.chars is None:
                defaults["chars"] = None  # --epochs sets the amount of training
        elif self.budget != "default":
            raise ElmanError("--budget chooses a text recipe; sensor/npz data have one default")
        filled = {k: (v if v is not None else defaults.get(k)) for k, v in self.as_dict().items()}
        cfg = TrainConfig(**filled)
        cfg.validate(task)
        return cfg

    def classifier_epochs(self, train_sequences: int, classes: int) -> int:
        """The epochs of a sequence classifier trained on ``train_sequences`` (resolved
        config, ``epochs`` not given by the user): ``epochs``, raised until training makes
        at least ``updates_per_class`` updates per class and at least ``min_updates``
        updates in all."""
        per_epoch = -(-train_sequences // min(self.batch, train_sequences))
        wanted = max(self.updates_per_class * classes, self.min_updates)
        return max(self.epochs, -(-wanted // per_epoch))

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
        need(self.epochs is None or self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}")
        need(self.chars is None or self.chars >= 1, f"--chars must be >= 1, got {self.chars}")
        for name in ("dropout_embedding", "dropout_head"):
            rate = getattr(self, name)
            need(0 <= rate < 1, f"--{name.replace('_', '-')} must be in [0, 1), got {rate}")
        need(self.bptt >= 0, f"--bptt must be >= 0, got {self.bptt}")
        need(self.clip >= 0, f"--clip must be >= 0 (0 disables clipping), got {self.clip}")
        need(self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}")
        need(
            self.loss_steps is None or self.loss_steps >= 1,
            f"--loss-steps must be >= 1, got {self.loss_steps}",
        )
        need(self.noise >= 0, f"--noise must be >= 0, got {self.noise}")
        need(self.updates_per_class >= 0,
             f"--updates-per-class must be >= 0, got {self.updates_per_class}")
        need(self.min_updates >= 0, f"--min-updates must be >= 0, got {self.min_updates}")
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
            need(self.epochs is None or self.chars is None,
                 "give --chars or --epochs (the amount of text training), not both")
        else:
            need(self.chars is None, "--chars is the amount of text training (text data only)")
            need(self.dropout_embedding == 0, "--dropout-embedding applies to text models only")
