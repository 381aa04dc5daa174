"""Run stage, isolated: worker processes (``supervisor``), what waits on what (``scheduler``),
workers started before their check asks for them (``ahead``), and what a worker does with
each kind of job (``handlers``, inside the process)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qcheck.workers.scheduler import DEFAULT_STEP_TIMEOUT, WorkerLanes

__all__ = ["DEFAULT_STEP_TIMEOUT", "WorkerLanes"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: ``ahead`` and the workers' own entry import this package without
    # the scheduler (and NumPy with it), first thing in their processes.
    if name in __all__:
        return getattr(importlib.import_module("qcheck.workers.scheduler"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
