"""The one exception type users see.

Every stage raises :class:`ElmanError` (or a subclass) with a message that names
the problem and, where it helps, what to do about it. The CLI prints the message
on one line (``error: ...``) and exits with status 1; any other exception is a
bug in elman and keeps its traceback.
"""


class ElmanError(Exception):
    """A problem with the user's input, data, model or environment."""


class DataError(ElmanError):
    """Missing, empty, malformed or non-finite data."""


class ModelError(ElmanError):
    """A model elman cannot handle (unsupported layer, wrong graph, corrupt file)."""


class ToolchainError(ElmanError):
    """A compiler, emulator or interpreter elman needs is missing or failed."""


class VerificationError(ElmanError):
    """Two implementations that must agree bit for bit did not."""
