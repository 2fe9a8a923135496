"""Errors raised where input enters DICE Studio.

Every message names the file, column or row at fault and says what would fix it, so the CLI and
the dashboard can show it as it is, without a traceback.
"""


class DiceError(ValueError):
    """Base class of every error DICE Studio raises on bad input."""


class CohortError(DiceError):
    """A cohort file or table cannot be used as it is."""

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


class ConfigError(DiceError):
    """A parameter (K, d, a ratio, a path...) is out of range or inconsistent with the data."""


class ModelFileError(DiceError):
    """A model directory or archive is missing, damaged, or was not written by DICE Studio."""


class CancelledError(Exception):
    """Raised inside long work when the caller asked it to stop."""
