"""Give freed memory back to the operating system between large steps.

Comparing a target walks its outputs in chunks of a few megabytes; glibc serves such blocks from
its heap once its adaptive mmap threshold has risen, and keeps them after ``free``, so a long
run's resident size would grow with every target although nothing is alive. ``malloc_trim``
returns those pages; where it does not exist (not glibc) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

__all__ = ["release_free_memory"]


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        library = ctypes.CDLL(name)
        return library if hasattr(library, "malloc_trim") else None
    except OSError:
        return None


def release_free_memory() -> None:
    library = _libc()
    if library is not None:
        library.malloc_trim(0)
