"""Run stage, isolated: worker processes (``supervisor``), what waits on what (``scheduler``),
and what a worker does with each kind of job (``handlers``, inside the process)."""

from qcheck.workers.scheduler import DEFAULT_STEP_TIMEOUT, WorkerLanes

__all__ = ["DEFAULT_STEP_TIMEOUT", "WorkerLanes"]
