"""The Optuna study of a search: storage, sampler, pruner, and its trials as a work list.

A search of ``--trials N`` is a study holding N *enqueued* trials (Optuna's
``enqueue_trial``, each tagged with its slot number). A worker claims one with
Optuna's own atomic WAITING -> RUNNING transition (what ``Study.ask`` does
first), so however many workers on however many machines join the study,
each slot is trained by exactly one of them and the study ends after N
trained trials. A sample whose model cannot fit the budget is told to Optuna
as an infeasible trial (so the sampler learns where the limits are) and the
slot goes on with a fresh sample; it does not count as one of the N.

The storage is an Optuna ``RDBStorage``: SQLite in ``SEARCH_DIR/study.db`` by
default, or any URL (``postgresql://...``), with Optuna's heartbeat: a worker
that dies leaves its trial RUNNING without heartbeats; the next worker to look
fails it (``optuna.storages.fail_stale_trials``) and puts its slot back in the
queue with the same parameters. A local search (one ``elman search`` owning
``SEARCH_DIR``) does that at once for every trial left RUNNING.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from elman.errors import ElmanError

# the heartbeat and stale-trial API is marked experimental; elman pins Optuna's major version
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

STUDY_NAME = "elman-search"
DB_FILE = "study.db"
HEARTBEAT_S = 20
GRACE_S = 90
CONFIG_ATTR = "elman_search_config"
SLOTS_ATTR = "elman_search_slots"
SLOT_ATTR = "slot"
OPEN_ATTEMPTS = 4
STORAGE_ENV = "ELMAN_SEARCH_STORAGE"  # how a worker process gets the URL (not in argv)


def local_url(search_dir: Path) -> str:
    return f"sqlite:///{(search_dir / DB_FILE).resolve()}"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage with heartbeats; a failed stale trial's slot is requeued."""
    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 120}}
    elif url.startswith("postgresql"):
        engine = {"pool_pre_ping": True}
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine,
                                              heartbeat_interval=HEARTBEAT_S,
                                              grace_period=GRACE_S,
                                              heartbeat_stale_trial_callback=requeue)
        except Exception as exc:  # SQLAlchemy's errors: connection refused, bad URL, no driver
            # processes that open an empty database together race to create its tables
            # (PostgreSQL workers; on SQLite any other reader, e.g. a monitoring script:
            # "table studies already exists", "UNIQUE constraint failed:
            # alembic_version"); the loser's retry finds them made
            if attempt + 1 == OPEN_ATTEMPTS or not (url.startswith("postgresql")
                                                    or _creation_race(str(exc))):
                raise ElmanError(f"cannot open the study storage {redact(url)}: "
                                 f"{str(exc).splitlines()[0]}") from None
            time.sleep(1.0 + attempt)
    raise AssertionError("unreachable")


def _creation_race(message: str) -> bool:
    return any(m in message for m in ("already exists", "UNIQUE constraint", "is locked"))


def redact(url: str) -> str:
    """The URL without its password."""
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, user = head.partition("://")
    if ":" not in user:
        return url
    return f"{scheme}://{user.partition(':')[0]}:***@{tail}"


def sampler(seed: int | None) -> optuna.samplers.BaseSampler:
    """Constrained TPE: it reads each trial's ``set_constraint`` values (flash, RAM,
    latency over budget), and prefers feasible trials; ``constant_liar`` keeps parallel
    workers from sampling the same point."""
    return optuna.samplers.TPESampler(multivariate=True, constant_liar=True,
                                      n_startup_trials=6, seed=seed)


def pruner(epochs: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(1, epochs // 3))


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Put the slot of a trial that did not finish back in the queue, same parameters."""
    slot = trial.user_attrs.get(SLOT_ATTR)
    if slot is None or "rejected" in trial.user_attrs:
        return
    study.enqueue_trial(trial.params, user_attrs={SLOT_ATTR: slot, "retry_of": trial.number})


def open_study(storage: optuna.storages.RDBStorage, name: str, *, direction: str,
               config: dict[str, Any], trials: int, epochs: int, seed: int | None,
               wait_s: float = 120.0) -> optuna.Study:
    """Create the study with ``trials`` enqueued slots, or join it (adding slots up to
    ``trials``); a study made with other search options is refused."""
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction=direction,
                                    sampler=sampler(seed), pruner=pruner(epochs))
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler(seed),
                                  pruner=pruner(epochs))
        _wait_for_setup(study, wait_s)
        _check_config(study, config, storage)
    else:
        study.set_user_attr(CONFIG_ATTR, config)
    # The creator enqueues its slots before it sets SLOTS_ATTR, which joiners wait for.
    # Raising --trials on a shared study: run one worker with the new number first (two
    # joiners raising it at the same instant could both enqueue the extra slots).
    add_slots(study, trials)
    return study


def _wait_for_setup(study: optuna.Study, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while SLOTS_ATTR not in study.user_attrs:  # its creator is still enqueueing
        if time.monotonic() > deadline:
            raise ElmanError(f"study {study.study_name!r} exists but was never set up by "
                             "elman search (another program's study?)")
        time.sleep(0.5)


def _check_config(study: optuna.Study, config: dict[str, Any], storage: Any) -> None:
    stored = study.user_attrs.get(CONFIG_ATTR, {})
    differ = [k for k in sorted(set(stored) | set(config)) if stored.get(k) != config.get(k)]
    if differ:
        detail = "; ".join(f"{k}: {stored.get(k)!r} there, {config.get(k)!r} here"
                           for k in differ)
        raise ElmanError(f"study {study.study_name!r} in {redact(storage.url)} was started "
                         f"with other search options ({detail}); use the same options, or "
                         "another SEARCH_DIR / --study")


def slot_count(study: optuna.Study) -> int:
    return int(study.user_attrs.get(SLOTS_ATTR, 0))


def add_slots(study: optuna.Study, trials: int) -> None:
    """Enqueue slots until the study has ``trials`` of them."""
    have = slot_count(study)
    for slot in range(have, trials):
        study.enqueue_trial({}, user_attrs={SLOT_ATTR: slot})
    if trials > have or SLOTS_ATTR not in study.user_attrs:
        study.set_user_attr(SLOTS_ATTR, max(trials, have))


# Optuna has no public names for a trial's storage id and a study's storage (the caching
# wrapper around the RDBStorage, which must see every trial a Trial object touches);
# ``Study.ask`` uses the same two.
def _trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    return trial._trial_id


def _storage(study: optuna.Study) -> optuna.storages.BaseStorage:
    return study._storage


def claim(study: optuna.Study) -> optuna.Trial | None:
    """Claim one enqueued trial (Optuna's atomic WAITING -> RUNNING, as ``Study.ask`` pops
    one), or None when none is left. Stale trials of dead workers are failed and requeued
    first."""
    optuna.storages.fail_stale_trials(study)
    storage = _storage(study)
    study_id = storage.get_study_id_from_name(study.study_name)
    for frozen in storage.get_all_trials(study_id, deepcopy=False,
                                         states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(_trial_id(frozen), state=TrialState.RUNNING):
                return optuna.Trial(study, _trial_id(frozen))
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def failed_attempts(study: optuna.Study, slot: int) -> int:
    """How many trials of ``slot`` failed with an error (not stopped, not rejected)."""
    return sum(t.state == TrialState.FAIL and t.user_attrs.get(SLOT_ATTR) == slot
               and "error" in t.user_attrs and "rejected" not in t.user_attrs
               for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))


def failed_slots(trials: list[FrozenTrial], slots: int) -> list[int]:
    """The slots that have no trained trial and none left to run: every attempt failed."""
    ended = {TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING}
    alive = {t.user_attrs.get(SLOT_ATTR) for t in trials
             if t.state in ended and "rejected" not in t.user_attrs}
    tried = {t.user_attrs.get(SLOT_ATTR) for t in trials}
    return [s for s in range(slots) if s in tried and s not in alive]


def requeue_failed(study: optuna.Study) -> int:
    """Give every slot whose attempts all failed one more (the last attempt's parameters);
    for a rerun of a local search. Returns how many slots were put back."""
    trials = study.get_trials(deepcopy=False)
    count = 0
    for slot in failed_slots(trials, slot_count(study)):
        last = max((t for t in trials if t.user_attrs.get(SLOT_ATTR) == slot),
                   key=lambda t: t.number)
        study.enqueue_trial(last.params, user_attrs={SLOT_ATTR: slot, "retry_of": last.number})
        count += 1
    return count


def new_attempt(study: optuna.Study, slot: int, after: int) -> optuna.Trial:
    """A fresh trial for the same slot (after a sample that could not fit)."""
    storage = _storage(study)
    trial_id = storage.create_new_trial(storage.get_study_id_from_name(study.study_name))
    trial = optuna.Trial(study, trial_id)
    trial.set_user_attr(SLOT_ATTR, slot)
    trial.set_user_attr("resampled_after", after)
    return trial


def fail_running(study: optuna.Study) -> int:
    """Fail every RUNNING trial and requeue its slot (only for the sole owner of a local
    study: no other worker can be alive)."""
    count = 0
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)
        requeue(study, frozen)
        count += 1
    return count


class Heartbeat:
    """Records the running trial's heartbeat every few seconds (Optuna's stale-trial check
    reads it), from a daemon thread."""

    def __init__(self, study: optuna.Study, trial: optuna.Trial):
        self._storage = _storage(study)
        self._trial_id = _trial_id(trial)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> Heartbeat:
        self._storage.record_heartbeat(self._trial_id)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S / 2):
            with contextlib.suppress(Exception):  # a missed beat is retried next time
                self._storage.record_heartbeat(self._trial_id)
