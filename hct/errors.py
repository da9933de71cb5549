"""The library's error types. Every user-facing failure is an :class:`HCTError` with a message that
says what was wrong and what to do, so the app and the CLI can show it instead of a traceback."""

from __future__ import annotations

from collections.abc import Callable


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


def cancellable(
    progress: Callable[[int, int], None] | None, cancel: Callable[[], bool] | None, what: str
) -> Callable[[int, int], None] | None:
    """The ``progress(done, total)`` a long computation calls after each unit of work, raising
    :class:`ComputationCancelled` there once ``cancel()`` returns True: how ``check_data``, ``predict``,
    ``localize`` and ``generate_phantom`` take the same ``progress=``/``cancel=`` pair as the ERF engine."""
    if cancel is None:
        return progress

    def report(done: int, total: int) -> None:
        if progress is not None:
            progress(done, total)
        if cancel():
            raise ComputationCancelled(f"{what} cancelled after {done} of {total}")

    return report


class PixelValueError(MammogramError):
    """An image's pixels are not finite numbers (NaN, inf, or a rescale that overflows)."""


class DicomHeaderError(MammogramError):
    """A DICOM header value the reader needs cannot be converted (text where a number belongs, out of range)."""


class ModelCardError(CheckpointError):
    """A model card's field has the wrong type or value; the message names the field and what it must be."""


class TrainConfigError(ConfigError):
    """A training configuration (``train`` and ``jobs launch`` share its one check) is invalid."""


class OverrideError(ConfigError, ValueError):
    """A model override's value is out of range or of the wrong type."""


class PathError(ConfigError):
    """A path cannot be used: its name is too long, it is a folder where a file belongs (or the reverse), or
    it may not be read or written."""
