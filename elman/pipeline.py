"""`elman run` (being built: see the issue tracker)."""

from elman.errors import ElmanError


def run() -> None:
    """Not built yet."""
    raise ElmanError("`elman run` is not built yet")
