"""`elman quantize` (being built: see the issue tracker)."""

from elman.errors import ElmanError


def quantize() -> None:
    """Not built yet."""
    raise ElmanError("`elman quantize` is not built yet")


def inspect() -> None:
    """Not built yet."""
    raise ElmanError("`elman inspect` is not built yet")
