"""Import TensorFlow without its start-up chatter on the user's terminal."""

from __future__ import annotations

import sys

from converters.quiet import native_quiet

__all__ = ["import_tensorflow", "native_quiet"]


def import_tensorflow() -> None:
    """Import TensorFlow once, quietly."""
    if "tensorflow" in sys.modules:
        return
    with native_quiet():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
