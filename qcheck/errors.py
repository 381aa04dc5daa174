"""One exception type per failure family; each knows the exit code the contract gives it."""

from __future__ import annotations

from enum import IntEnum

import converters.errors
from converters.errors import first_line

__all__ = [
    "ConversionError",
    "ExitCode",
    "ImageError",
    "ModelLoadError",
    "ModelOutputError",
    "QcheckError",
    "RuntimeFailure",
    "UsageError",
    "first_line",
]


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    CRASHED = 3


class QcheckError(Exception):
    """Base of every error qcheck reports to the user as one line."""

    exit_code: ExitCode = ExitCode.USAGE


class UsageError(QcheckError):
    """A bad option or combination of options."""


class ModelLoadError(QcheckError):
    """The model file is missing, unreadable, unsafe or of an unsupported kind."""


class ModelOutputError(QcheckError):
    """The float model's own outputs are unusable (NaN or infinite) on the images given."""


class ImageError(QcheckError):
    """No usable images where images were required."""


class ConversionError(QcheckError, converters.errors.ConversionError):
    """A converter failed or crashed on a model qcheck accepted."""

    exit_code = ExitCode.CRASHED


class RuntimeFailure(QcheckError):
    """An interpreter or runtime failed or crashed on a converted artifact."""

    exit_code = ExitCode.CRASHED
