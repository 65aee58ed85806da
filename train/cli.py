"""`elman train` (being built: see the issue tracker)."""

from elman.errors import ElmanError


def train() -> None:
    """Not built yet."""
    raise ElmanError("`elman train` is not built yet")
