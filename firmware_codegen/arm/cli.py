"""`elman mcu` (being built: see the issue tracker)."""

from elman.errors import ElmanError


def mcu() -> None:
    """Not built yet."""
    raise ElmanError("`elman mcu` is not built yet")
