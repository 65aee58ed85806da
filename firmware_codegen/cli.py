"""`elman codegen` (being built: see the issue tracker)."""

from elman.errors import ElmanError


def codegen() -> None:
    """Not built yet."""
    raise ElmanError("`elman codegen` is not built yet")
