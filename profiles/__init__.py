"""Arithmetic profiles: one module per interpreter whose int8 results elman reproduces.

Each profile module (``tflm``, ``tflite``) defines a :class:`~elman.profiles.base.Profile`
(how multipliers are quantized, how FULLY_CONNECTED requantizes, which TANH table)
as its ``PROFILE``; ``elman.profiles.base`` derives every constant from it once
(multipliers, shifts, ADD rescale, tables), and the simulator, the C generator,
``elman inspect`` and the tables all read them from there. A new profile is one
new module plus one line in ``_MODULES`` (and its C requantization, see the
README's layout section).
"""

from __future__ import annotations

import importlib
from functools import cache

from elman.profiles.base import Profile

_MODULES = {"tflm": "elman.profiles.tflm", "tflite": "elman.profiles.tflite"}
PROFILE_NAMES: tuple[str, ...] = tuple(_MODULES)


@cache
def get_profile(name: str) -> Profile:
    """The profile called ``name``; ValueError naming the choices for an unknown one."""
    if name not in _MODULES:
        raise ValueError(f"unknown arithmetic profile {name!r}; choose one of {PROFILE_NAMES}")
    return importlib.import_module(_MODULES[name]).PROFILE


def check_profile(name: str) -> str:
    """``name`` if it is a profile, else ValueError."""
    get_profile(name)
    return name


__all__ = ["PROFILE_NAMES", "Profile", "check_profile", "get_profile"]
