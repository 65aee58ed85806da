"""`elman verify` (being built: see the issue tracker)."""

from elman.errors import ElmanError


def verify() -> None:
    """Not built yet."""
    raise ElmanError("`elman verify` is not built yet")
