"""Synchronising with other processes by what they do, never by sleeping a fixed time."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, guard: float = 120.0) -> T:
    """Poll ``condition`` until it returns something truthy, and return that. ``guard`` only
    keeps a broken test from hanging; no test reads it as a measurement."""
    deadline = time.monotonic() + guard
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


def processes_with(marker: str) -> list[str]:
    """The pids of the processes whose environment holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and marker.encode() in (proc / "environ").read_bytes():
                found.append(proc.name)
    return found
