"""The target registry: every core elman builds for, runs, counts and times (one entry each)."""

from elman.targets.registry import TARGETS, Target, get_target, known_targets_line, target_names

__all__ = ["TARGETS", "Target", "get_target", "known_targets_line", "target_names"]
