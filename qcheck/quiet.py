"""Import TensorFlow without its start-up chatter on the user's terminal."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from converters.quiet import native_quiet

__all__ = ["import_tensorflow", "native_quiet"]


def import_tensorflow(*, plotting: bool = True) -> None:
    """Import TensorFlow once, quietly. Without ``plotting`` (a worker, which draws nothing)
    Keras loads without matplotlib: it imports pyplot only for its image galleries, 0.4 s of
    a worker's start on the check's critical path; matplotlib can still be imported after."""
    if "tensorflow" in sys.modules:
        return
    with native_quiet(), contextlib.ExitStack() as stack:
        if not plotting:
            stack.enter_context(_unimportable("matplotlib"))
        import keras  # noqa: F401
        import tensorflow  # noqa: F401


@contextlib.contextmanager
def _unimportable(package: str) -> Iterator[None]:
    """``import package`` raises ImportError (as if not installed) until the block ends,
    unless it is loaded already."""
    if package in sys.modules:
        yield
        return
    sys.modules[package] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get(package, "") is None:
            del sys.modules[package]
