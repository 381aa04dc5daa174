"""The one failure family of the conversion layer, and how its messages are shortened."""

from __future__ import annotations

__all__ = ["ConversionError", "UntraceableModel", "first_line"]


class ConversionError(Exception):
    """A converter failed or refused a model; the message names the target and the reason."""


class UntraceableModel(ConversionError):
    """The model cannot be traced into a graph at all (every target fails alike)."""


def first_line(exc: BaseException, limit: int = 2000) -> str:
    """The most telling line of a library's error message, for a one-line report; a line
    longer than ``limit`` is cut at a word, never mid-word, and says so."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    line = lines[-1] if lines else type(exc).__name__
    if len(line) <= limit:
        return line
    return line[:limit].rsplit(" ", 1)[0] + " …"
