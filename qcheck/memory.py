"""Give freed memory back to the operating system between large steps.

Comparing a target walks its outputs in chunks of a few megabytes; glibc serves such blocks from
its heap once its adaptive mmap threshold has risen, and keeps them after ``free``, so a long
run's resident size would grow with every target although nothing is alive. ``malloc_trim``
returns those pages; where it does not exist (not glibc) this is a no-op.

A worker also holds garbage in reference cycles: TensorFlow's converter leaves its graphs in
them (ConvNeXt-Tiny: 1.1 GB per conversion), to pile up until the collector happens to run.
A full collection costs 0.2 processor-seconds once TensorFlow is loaded, so it runs only after
a job that left the process much larger (``CycleCollector``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
from typing import Any

__all__ = ["CycleCollector", "release_free_memory", "resident_bytes"]

# Growth since the last collection that makes a full one worth its processor time.
COLLECT_AFTER_GROWTH = 256 * 1024**2


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


def resident_bytes() -> int | None:
    """This process's resident size now (``None`` where ``/proc`` does not say)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class CycleCollector:
    """Collects reference cycles when the process has grown by ``growth`` bytes since the last
    collection (always, where its size cannot be read), then gives freed pages back."""

    def __init__(self, growth: int = COLLECT_AFTER_GROWTH):
        self.growth = growth
        self._after_last = resident_bytes() or 0

    def __call__(self) -> bool:
        """Whether it collected."""
        now = resident_bytes()
        collect = now is None or now - self._after_last >= self.growth
        if collect:
            gc.collect()
        release_free_memory()
        if collect:
            self._after_last = resident_bytes() or 0
        elif now is not None:
            self._after_last = min(self._after_last, now)
        return collect
