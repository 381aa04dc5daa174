"""Give freed memory back to the operating system between large steps.

Comparing a target walks its outputs in chunks of a few megabytes; glibc serves such blocks from
its heap once its adaptive mmap threshold has risen, and keeps them after ``free``, so a long
run's resident size would grow with every target although nothing is alive. ``malloc_trim``
returns those pages; where it does not exist (not glibc) this is a no-op.

The ``qcheck`` command's own process, which does the comparisons, also keeps what it frees for
reuse (``keep_freed_memory``): see there.

A worker also holds garbage in reference cycles: TensorFlow's converter leaves its graphs in
them (ConvNeXt-Tiny: 1.1 GB per conversion), to pile up until the collector happens to run.
A full collection cost 0.14-0.2 processor-seconds once TensorFlow was loaded, so it runs only
after a job that left the process much larger (``CycleCollector``); since workers freeze what
their imports made (``qcheck.workers.entry``), one right after the import takes under 0.01 s.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
from typing import Any

__all__ = ["CycleCollector", "keep_freed_memory", "release_free_memory", "resident_bytes"]

# Growth since the last collection that makes a full one worth its processor time.
COLLECT_AFTER_GROWTH = 256 * 1024**2


@functools.cache
def _libc() -> Any:
    """glibc, where this process has it. The symbols the process already loaded come first:
    ``find_library`` runs ``ldconfig`` in a child process to look it up."""
    try:
        loaded = ctypes.CDLL(None)
    except OSError:
        loaded = None
    if loaded is not None and hasattr(loaded, "malloc_trim"):
        return loaded
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        library = ctypes.CDLL(name)
        return library if hasattr(library, "malloc_trim") else None
    except OSError:
        return None


# mallopt's parameters, from glibc's malloc.h
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -2, -3, -8
_MMAP_THRESHOLD_MAX = 32 * 1024**2  # the largest glibc accepts on 64-bit
_TOP_PAD = 64 * 1024**2
_NEVER_TRIM = 2**31 - 1


def keep_freed_memory() -> None:
    """Let this process reuse the memory its arrays free instead of faulting fresh pages in.

    A comparison allocates and frees temporaries of several megabytes per chunk of images, on
    several threads. With glibc's defaults the threads' frees go back to the kernel and the next
    chunk faults the pages in again, each zeroed by the kernel; and NumPy asks for transparent
    huge pages for every array of 4 MB or more, whose faults zero 2 MB at a time. ``perf`` put
    17 % of the comparisons' processor time in the kernel's ``clear_page_erms``. Here every
    thread allocates from one heap, blocks under 32 MB come from it, and freed ones stay for
    the next chunk; ``release_free_memory`` still hands them back between targets, so the
    resident size does not grow with the number of targets. NumPy's huge-page advice is turned
    off too: both halves are needed (in interleaved pairs each alone was 0.5-0.8 s slower
    than the two together; ``benchmarks/README.md``).

    For the command's process only (``qcheck.cli.run``): a library must not retune the
    allocator of the program that imports it. Without glibc (``mallopt``) only the NumPy part
    applies."""
    try:
        from numpy._core import multiarray

        # NumPy's own switch, the one NUMPY_MADVISE_HUGEPAGE sets when NumPy is imported
        multiarray._set_madvise_hugepage(False)  # type: ignore[attr-defined]
    except (ImportError, AttributeError):
        pass
    library = _libc()
    if library is None or not hasattr(library, "mallopt"):
        return
    library.mallopt(_M_ARENA_MAX, 1)
    library.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
    library.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM)
    library.mallopt(_M_TOP_PAD, _TOP_PAD)


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
