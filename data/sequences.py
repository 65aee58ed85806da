"""Sequences of unequal length -> one padded array and the true lengths.

Policy (the README's, one place):

- sequences keep their own length: ``(N, T, C)`` holds sequence ``n`` in steps
  ``0 .. lengths[n] - 1`` and zeros after its end (padding at the end); training
  masks the padding out of the loss, and every later stage reads a sequence's
  answer at its last real step and compares implementations on real steps only;
- a sequence far longer than the rest (more than :data:`FAR_LONGER` times the
  median length) is refused, naming it, because padding every sequence to it
  costs memory and time in every stage; ``max_length`` keeps the last
  ``max_length`` samples of each longer sequence instead (recorded in the
  data spec);
- a missing value (NaN) inside a sequence is an error; NaN after the last real
  step of every channel is end padding;
- ``stride`` k reads each sequence at 1/k of its sampling rate, after ``max_length``:
  a sequence of L samples becomes ceil(L / k) steps. ``stride_mode`` ``mean`` (the
  default) makes step j the mean of samples jk .. jk + k - 1 (the last window: of the
  samples it has), ``sample`` keeps samples 0, k, 2k, ... only, ``stack`` makes step j
  the k samples jk .. jk + k - 1 side by side (k x C channels, sample-major; the last
  window repeats the last real sample to fill its k). The device must
  do the same (the data spec and the C header record both). ``elman train`` chooses
  the stride from the training lengths unless ``--stride`` is given (:func:`auto_stride`),
  and with ``--stride-mode auto`` (the default) the mode from the data
  (:func:`auto_stride_mode`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from elman.errors import DataError

FAR_LONGER = 10  # times the median length
# auto_stride: sequences whose median length is over LONG_SEQUENCES steps are read at a
# stride that brings the median to at most STRIDE_TARGET steps (bench/data_defaults.py)
LONG_SEQUENCES = 128
STRIDE_TARGET = 40
# how a step is made of its stride's k samples: their mean, the first of them, or all k
# side by side (k x C channels)
STRIDE_MODES = ("mean", "sample", "stack")
# "auto" (the default) resolves to one of them from the data (auto_stride_mode); the data
# spec records the mode chosen. Measured on validation folds carved from the training
# split (bench/data_variants.py, 4 folds x 5 repeats; GunPoint 3 repeats for stride 4):
#   GunPoint (1 channel, 150 samples, 2 classes of 25): mean of 4 0.877; stack of 4 0.918,
#     of 5 0.922, of 8 0.939, of 10 0.933 (3 repeats);
#   PickupGestureWiimoteZ (1 channel, median 136, 10 classes of 5; 3 repeats): mean of 4
#     0.600; stack of 4 0.588, of 7 0.492, of 8 0.546 (training accuracy 0.99-1.00: with 5
#     sequences a class, k x more input weights overfit).
# So: stack, at the stride that brings the median to STACK_TARGET steps, where a step holds
# at most STACK_MAX_INPUTS values and every class has at least STACK_MIN_PER_CLASS training
# sequences; else the mean at the stride of STRIDE_TARGET steps.
STRIDE_MODE_CHOICES = ("auto", *STRIDE_MODES)
DEFAULT_STRIDE_MODE = "auto"
STACK_TARGET = 20
STACK_MAX_INPUTS = 16
STACK_MIN_PER_CLASS = 10
# --deltas: each raw sample followed by its first difference (x[t] - x[t - 1], per channel;
# 0 at the first sample), before the stride. "auto" resolves from the data (auto_deltas):
# where the stack holds them. Measured on the same validation folds (bench/data_defaults.py
# p7_deltas, 4 folds x 3 repeats): GunPoint 0.966 against the stack of 8's 0.947 (over 44
# folds of bench/data_variants.py: 0.947 against 0.929); BasicMotions (no stride) 0.993
# against 1.000; PickupGestureWiimoteZ (the mean of 4, 5 sequences a class) 0.508 against
# 0.646: with few sequences a class the differences overfit as the stack does.
DELTAS_CHOICES = ("auto", "on", "off")
DEFAULT_DELTAS = "auto"


def check_max_length(max_length: int | None) -> None:
    if max_length is not None and (isinstance(max_length, bool) or max_length < 1):
        raise DataError(f"--max-length must be a positive number of steps, got {max_length}")


def stack(series: Sequence[np.ndarray], names: Sequence[str], where: str,
          max_length: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Stack ``(T_i, C)`` float64 series into ``(N, T, C)`` padded with zeros at the end.

    Returns (array, int64 lengths (N,), info for the data spec). ``names`` name each
    series in errors (e.g. ``file.ts:12``).
    """
    check_max_length(max_length)
    lengths = np.array([len(s) for s in series], np.int64)
    cut = 0
    if max_length is None:
        check_far_longer(lengths, names, where)
    else:
        cut = int((lengths > max_length).sum())
        lengths = np.minimum(lengths, max_length)
    steps = int(lengths.max())
    x = np.zeros((len(series), steps, series[0].shape[1]), np.float64)
    for n, s in enumerate(series):
        x[n, : lengths[n]] = s[len(s) - lengths[n]:]
    return x, lengths, describe(lengths, max_length, cut)


def auto_stride(lengths: np.ndarray, target: int = STRIDE_TARGET) -> int:
    """The stride ``elman train`` reads sequences at when ``--stride`` is not given: 1 up to
    a median length of :data:`LONG_SEQUENCES` steps, else the smallest that brings the
    median to at most ``target`` steps (:data:`STRIDE_TARGET` for the mean,
    :data:`STACK_TARGET` for a stack)."""
    median = float(np.median(lengths))
    if median <= LONG_SEQUENCES:
        return 1
    return int(np.ceil(median / target))


def stack_fits(stride: int, channels: int, smallest_class: int) -> bool:
    """Whether ``--stride-mode auto`` stacks at ``stride`` (see :data:`STRIDE_MODES`)."""
    return stride * channels <= STACK_MAX_INPUTS and smallest_class >= STACK_MIN_PER_CLASS


def median_rule(lengths: np.ndarray, target: int) -> str:
    """Why a stride was chosen from the training ``lengths`` (for ``stride_rule``)."""
    return (f"the median training length, {float(np.median(lengths)):g} samples, is over "
            f"{LONG_SEQUENCES}: read at most {target} steps of it")


def auto_stride_mode(lengths: np.ndarray, channels: int, smallest_class: int,
                     stride: int | None = None) -> tuple[int, str, str]:
    """(stride, mode, why) for ``--stride-mode auto``: ``stride`` as given, or chosen from
    the training ``lengths``; ``smallest_class``: training sequences of the rarest class."""
    k = stride if stride is not None else auto_stride(lengths, STACK_TARGET)
    if k > 1 and stack_fits(k, channels, smallest_class):
        mode, target = "stack", STACK_TARGET
        why = (f"auto: {k} samples x {channels} channel(s) side by side (at most "
               f"{STACK_MAX_INPUTS} inputs), every class at least {STACK_MIN_PER_CLASS} "
               "training sequences")
    else:
        k = stride if stride is not None else auto_stride(lengths)
        mode, target = "mean", STRIDE_TARGET
        why = (f"auto: the mean of each {k} samples (a stack of them: {k * channels} inputs, "
               f"the rarest class {smallest_class} training sequences; a stack needs at most "
               f"{STACK_MAX_INPUTS} and at least {STACK_MIN_PER_CLASS})")
    if stride is None:
        why += "; " + median_rule(lengths, target)
    return k, mode, why


def auto_deltas(lengths: np.ndarray, channels: int, smallest_class: int,
                stride: int | None = None, mode: str = DEFAULT_STRIDE_MODE
                ) -> tuple[bool, str]:
    """(whether, why) for ``--deltas auto``: the first differences where the stride (as
    given, or chosen from the training ``lengths``) stacks the samples of a step and the
    stack holds them too (see :data:`DELTAS_CHOICES`)."""
    if mode not in ("auto", "stack"):
        return False, f"auto: no stack (--stride-mode {mode})"
    if stride is not None:
        k = stride
    else:  # the stride with_stride chooses: a stack's target for auto, the mean's for stack
        k = auto_stride(lengths, STACK_TARGET if mode == "auto" else STRIDE_TARGET)
    if k > 1 and stack_fits(k, 2 * channels, smallest_class):
        return True, (f"auto: a stack of {k} samples of {channels} channel(s) and their first "
                      f"differences fits ({2 * k * channels} inputs, at most {STACK_MAX_INPUTS})")
    return False, "auto: no stack"


def check_deltas(deltas: str) -> None:
    if deltas not in DELTAS_CHOICES:
        raise DataError(f"--deltas must be one of {', '.join(DELTAS_CHOICES)}, got {deltas!r}")


def with_deltas(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each sample followed by its first difference (``--deltas``): (N, T, 2C), sample t's
    channels ``x[t]`` then ``x[t] - x[t - 1]`` (0 at a sequence's first sample and on the
    padding after its end). Computed in the data's own units, before the stride and the
    normalization, as the device computes it from the raw samples."""
    lengths = np.asarray(lengths, np.int64)
    d = np.zeros_like(x)
    d[:, 1:] = x[:, 1:] - x[:, :-1]
    d[~mask(lengths, x.shape[1])] = 0.0
    return np.concatenate([x, d], axis=2)


def check_stride(stride: int) -> None:
    if isinstance(stride, bool) or not isinstance(stride, int | np.integer) or stride < 1:
        raise DataError(f"--stride must be a positive number of samples, got {stride}")


def check_stride_mode(mode: str, choices: tuple[str, ...] = STRIDE_MODES) -> None:
    if mode not in choices:
        raise DataError(f"--stride-mode must be one of {', '.join(choices)}, got {mode!r}")


def strided(x: np.ndarray, lengths: np.ndarray, stride: int, mode: str = "sample"
            ) -> tuple[np.ndarray, np.ndarray]:
    """Each padded sequence read at ``stride`` and the new lengths (ceil(length / stride)):
    ``sample``: samples 0, k, 2k, ...; ``mean``: step j is the mean of the real samples
    among jk .. jk + k - 1; ``stack``: step j is samples jk .. jk + k - 1 side by side,
    (N, steps, k x C), a sequence's last window filled with its last real sample (the
    padding after a sequence's end stays zero)."""
    check_stride(stride)
    check_stride_mode(mode)
    lengths = np.asarray(lengths, np.int64)
    if mode == "sample" or stride == 1:
        return x[:, ::stride], -(-lengths // stride)
    n, t, c = x.shape
    steps = -(-t // stride)
    if mode == "stack":
        frames = np.zeros((n, steps * stride, c), x.dtype)
        frames[:, :t] = x
        for i, length in enumerate(lengths):
            if length > 0:
                frames[i, length: -(-length // stride) * stride] = x[i, length - 1]
        return frames.reshape(n, steps, stride * c), -(-lengths // stride)
    real = mask(lengths, steps * stride).reshape(n, steps, stride)
    windows = np.zeros((n, steps * stride, c), np.float64)
    windows[:, :t] = x
    sums = (windows.reshape(n, steps, stride, c) * real[..., None]).sum(axis=2)
    counts = real.sum(axis=2)[..., None]
    return (sums / np.maximum(counts, 1)).astype(x.dtype), -(-lengths // stride)


def describe(lengths: np.ndarray, max_length: int | None = None, cut: int = 0) -> dict:
    """The data spec's record of the lengths."""
    info = {"lengths": {"min": int(lengths.min()), "max": int(lengths.max()),
                        "median": float(np.median(lengths))}}
    if lengths.min() == lengths.max():
        info["padding"] = "none (equal length)"
    else:
        info["padding"] = ("end, with zeros; masked in training, and each sequence's answer "
                           "is read at its last real step")
    if max_length is not None:
        info["max_length"] = int(max_length)
        info["lengths"]["cut_to_max_length"] = cut
    return info


def check_far_longer(lengths: np.ndarray, names: Sequence[str], where: str) -> None:
    median = float(np.median(lengths))
    longest = int(np.argmax(lengths))
    if lengths[longest] > FAR_LONGER * median:
        n_far = int((lengths > FAR_LONGER * median).sum())
        others = f" (and {n_far - 1} more)" if n_far > 1 else ""
        raise DataError(
            f"{where}: sequence {names[longest]} has {int(lengths[longest]):,} steps, more than "
            f"{FAR_LONGER}x the median length {median:g}{others}; padding every sequence to it "
            f"would cost {lengths.size * int(lengths[longest]):,} steps per channel. Remove it, "
            "or pass --max-length N to keep the last N samples of longer sequences")


def end_padding(x: np.ndarray, where: str, name: str) -> np.ndarray:
    """True lengths of ``(N, T, C)`` data padded with NaN at the end (every channel NaN).

    A NaN before a sequence's last real step is an error naming its position.
    """
    real = ~np.isnan(x).all(axis=2)  # (N, T): a step with any value is real
    any_real = real.any(axis=1)
    if not any_real.all():
        raise DataError(f"{where}: {name}[{int(np.flatnonzero(~any_real)[0])}] is all NaN "
                        "(an empty sequence)")
    lengths = x.shape[1] - np.argmax(real[:, ::-1], axis=1)
    inside = np.arange(x.shape[1])[None, :] < lengths[:, None]
    bad = ~np.isfinite(x) & inside[:, :, None]
    if bad.any():
        n, t, c = (int(v[0]) for v in np.nonzero(bad))
        raise DataError(f"{where}: {name} contains NaN or inf (first at [{n}, {t}, {c}]), inside "
                        f"sequence {n} (its last real step is {int(lengths[n]) - 1}); NaN may "
                        "only pad a sequence after its end, in every channel; elman does not "
                        "impute")
    return lengths.astype(np.int64)


def mask(lengths: np.ndarray, steps: int) -> np.ndarray:
    """Boolean (N, steps): True on real steps."""
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]
