"""qcheck's own version, as installed (or the source tree's, when it is not)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("qcheck")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"
