"""Errors a user can fix. Each carries a one-line message naming the problem and the file.

Command-line entry points print `error: <message>` and exit 2; the dashboard shows the
message. Anything else that escapes is a bug.
"""


class HandIDError(Exception):
    """Base of every user-facing error."""


class DataError(HandIDError):
    """A dataset root, CSV, image or split that cannot be used as given."""


class ConfigError(HandIDError):
    """An unknown config key or a value out of range."""


class ModelError(HandIDError):
    """An unknown backbone, or weights that are not available."""


class TrainingError(HandIDError):
    """A run that cannot go on: a loss that became NaN or infinite."""
