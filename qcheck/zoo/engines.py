"""Where units run: a local process pool (the default, needs nothing), or Ray tasks on a
cluster. Both take the same units and give the same results; a unit waits for the unit it
comes ``after`` (a model's prepare step)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from qcheck.errors import ExitCode
from qcheck.zoo.units import Unit, UnitResult, run_unit

__all__ = ["LocalPool", "RayCluster", "run_units"]

# A task whose worker dies is run again elsewhere this many times before it is reported:
# by Ray itself, then by the scheduler here (which is all a local pool has).
RAY_RETRIES = 3
RERUNS = 1


class Engine(Protocol):
    workers: int

    def submit(self, unit: Unit) -> Any: ...

    def finished(self, handles: list[Any]) -> list[tuple[Any, UnitResult | Exception]]: ...

    def close(self, abort: bool = False) -> None: ...


def run_units(units: list[Unit], engine: Engine,
              on_result: Callable[[UnitResult, list[Unit], list[Unit]], None]
              ) -> list[UnitResult]:
    """Every unit once, each as soon as what it waits for is done; ``on_result`` sees each
    result with the units still running and still queued."""
    pending, running, done = list(units), {}, {}  # type: ignore[var-annotated]
    tries: dict[str, int] = {}
    while pending or running:
        # No more at once than there are workers: queued units stay here, where what they
        # wait for is known and the progress says what is really running.
        for unit in [u for u in pending if u.after is None or u.after in done]:
            if len(running) >= engine.workers:
                break
            pending.remove(unit)
            running[engine.submit(unit)] = unit
        if not running:  # waits on a unit that never ran: cannot happen with plan_units
            raise AssertionError(f"units wait on nothing: {[u.key for u in pending]}")
        for handle, outcome in engine.finished(list(running)):
            unit = running.pop(handle)
            if not isinstance(outcome, UnitResult) and tries.get(unit.key, 0) < RERUNS:
                tries[unit.key] = tries.get(unit.key, 0) + 1
                pending.append(unit)  # its worker died: once more, on another worker
                continue
            result = outcome if isinstance(outcome, UnitResult) else _lost(unit, outcome)
            done[unit.key] = result
            on_result(result, list(running.values()), list(pending))
    return [done[u.key] for u in units]


class LocalPool:
    """A process pool sized to the machine; each unit is a whole check with its own worker
    lanes, so a crashing converter stays isolated as in a single check."""

    def __init__(self, workers: int | None = None, cache: bool = True):
        self.workers = workers or max(os.cpu_count() or 1, 1)
        self.cache = cache
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn: a forked child would inherit this process's threads and loaded libraries
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, unit: Unit) -> Future[UnitResult]:
        try:
            return self._pool.submit(run_unit, unit, self.cache)
        except BrokenProcessPool:  # a worker died: the pool takes no more work; a new one
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(run_unit, unit, self.cache)

    def finished(self, handles: list[Any]) -> list[tuple[Any, UnitResult | Exception]]:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        finished: list[tuple[Any, UnitResult | Exception]] = []
        for future in done:
            error = future.exception()
            finished.append((future, error if isinstance(error, Exception)
                             else future.result()))
        return finished

    def close(self, abort: bool = False) -> None:
        """Wait for the pool's processes; on ``abort`` (interrupted, terminated) stop them:
        SIGTERM lets each unit's check clean up its work folder and worker lanes."""
        if abort:
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.terminate()
        self._pool.shutdown(wait=not abort, cancel_futures=True)


class RayCluster:
    """The same units as Ray tasks: on the cluster at ``address``, or on a local Ray started
    for the run (``address=None``). Ray runs a task again when its worker or node dies."""

    def __init__(self, address: str | None = None, workers: int | None = None,
                 cache: bool = True):
        try:
            import ray
        except ImportError:
            from qcheck.errors import UsageError

            raise UsageError("--ray needs Ray: pip install 'qcheck[ray]'") from None
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                options["num_cpus"] = workers or os.cpu_count() or 1
            ray.init(address=address, **options)
        self.workers = int(ray.cluster_resources().get("CPU", 1))
        self._task: Any = ray.remote(num_cpus=1, max_retries=RAY_RETRIES)(run_unit)
        self.cache = cache

    def submit(self, unit: Unit) -> Any:
        return self._task.remote(unit, self.cache)

    def finished(self, handles: list[Any]) -> list[tuple[Any, UnitResult | Exception]]:
        ready, _ = self._ray.wait(handles, num_returns=1)
        results: list[tuple[Any, UnitResult | Exception]] = []
        for ref in ready:
            try:
                results.append((ref, self._ray.get(ref)))
            except Exception as exc:  # its worker died on every try
                results.append((ref, exc))
        return results

    def close(self, abort: bool = False) -> None:
        if self._started:
            self._ray.shutdown()


def _lost(unit: Unit, error: Exception) -> UnitResult:
    """A unit whose worker never answered (it died on every try): a crash, exit 3."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return UnitResult(unit, error=f"{unit.key}: the worker was lost ({type(error).__name__}"
                                  f"{': ' + reason if reason else ''})",
                      exit_code=int(ExitCode.CRASHED))
