"""The library's error types. Every user-facing failure is an :class:`HCTError` with a message that
says what was wrong and what to do, so the app and the CLI can show it instead of a traceback."""


class HCTError(Exception):
    """Base class of every error the library raises on purpose."""


class MammogramError(HCTError):
    """An image could not be read or does not look like a mammogram."""


class CheckpointError(HCTError):
    """A checkpoint is missing, corrupt, tampered with, or for another architecture."""


class ConfigError(HCTError):
    """A configuration, manifest or command-line value is invalid."""


class EvaluationError(HCTError):
    """Predictions cannot be evaluated as asked (one class only, NaN scores, mismatched ids...)."""


class ComputationCancelled(HCTError):
    """A long computation was stopped because its cancel check returned True."""


class UnknownModelError(ConfigError, ValueError):
    """A model name or override the registry does not know; the message lists the known ones."""
