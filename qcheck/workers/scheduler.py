"""Conversions and interpreters run in worker processes, so a crash cannot take qcheck down.

TensorFlow's and LiteRT's security notes say to treat a model as untrusted code and that their
interpreters are not sandboxes; a segfault, an abort or an out-of-memory kill in one conversion
becomes that target's ``error`` here, and the other targets still finish.

Jobs are grouped into *lanes* (``Lane``), each one long-lived worker taking its jobs in turn, in
parallel on the machine's two cores. A job with a ``base`` waits in its lane until that job has
finished; a job with a ``spare_lane`` may go to that lane's worker when it is idle with nothing
of its own ready. A worker that dies or overruns its step timeout is replaced, and its lane
carries on with the jobs left.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import wait
from pathlib import Path

from qcheck.jobs import ImageFiles, Job, JobResult, Lane
from qcheck.workers.supervisor import Worker

__all__ = ["DEFAULT_STEP_TIMEOUT", "WorkerLanes"]

# Seconds one conversion-and-run step may take before its worker is stopped.
DEFAULT_STEP_TIMEOUT = 900.0


@dataclass
class _Lane:
    name: Lane
    queue: deque[Job] = field(default_factory=deque)
    worker: Worker | None = None

    @property
    def busy(self) -> bool:
        return self.worker is not None and self.worker.current is not None


_reapers: list[threading.Thread] = []


def _reap_later(worker: Worker) -> None:
    """Wait for a killed worker on a thread of its own: the kernel takes a twentieth of a
    second to free a TensorFlow worker's memory, which the caller (writing its report, say)
    need not wait for. The process waits for them before it exits, so no worker is left
    unreaped and every worker's processor time counts as the process's children's."""
    reaper = threading.Thread(target=worker.reap, name="qcheck-reap", daemon=True)
    reaper.start()
    _reapers[:] = [*(other for other in _reapers if other.is_alive()), reaper]


@atexit.register
def _join_reapers() -> None:
    while _reapers:
        _reapers.pop().join()


class WorkerLanes:
    """Runs jobs in one worker process per lane and yields results as they finish.

    Lanes live until ``close``: a check starts them early (``prestart``) so TensorFlow loads
    while images are read, and later verification jobs reuse the warm workers.
    """

    def __init__(self, workdir: Path, step_timeout: float | None = None):
        self.workdir = workdir
        self.step_timeout = step_timeout or float(
            os.environ.get("QCHECK_STEP_TIMEOUT") or DEFAULT_STEP_TIMEOUT)
        self.files: ImageFiles | None = None
        self._lanes: dict[Lane, _Lane] = {}
        self._finished: dict[str, JobResult] = {}
        # Closing is final: the thread that runs the lanes may still be dispatching when the
        # caller closes them (SIGTERM unwinding a check), and must not start a worker then,
        # which would outlive the run and write into its removed work folder.
        self._closed = False
        self._starting = threading.Lock()

    def images(self, calibration: Path, evaluation: Path, input_range: str) -> None:
        self.files = ImageFiles(str(calibration), str(evaluation), input_range)

    def prestart(self, names: Sequence[Lane]) -> None:
        for name in names:
            with self._starting:
                lane = self._lane(name)
                if lane.worker is None and not self._closed:
                    lane.worker = Worker(name, self.workdir, preload=True)

    def run(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        active: list[_Lane] = []
        for job in jobs:
            self._lane(Lane(job.lane)).queue.append(replace(job, images=self.files))
            for name in (job.lane, job.spare_lane):
                if name is not None and self._lane(Lane(name)) not in active:
                    active.append(self._lane(Lane(name)))
        try:
            while True:
                for own in (True, False):  # a lane's own jobs before any it may take over
                    for lane in active:
                        if not lane.busy:
                            yield from self._dispatch(lane, own=own)
                busy = [lane for lane in active if lane.busy]
                if not busy:
                    break
                for result in self._collect(busy):
                    self._finished[result.job.key] = result
                    yield result
            for lane in active:  # only jobs whose base was never run can be left
                while lane.queue:
                    yield _not_run(lane.queue.popleft(), stopped=self._closed)
        except BaseException:
            self.close()
            raise

    def run_in_background(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        """``run`` on a thread of its own: lanes get their next job the moment they finish,
        even while the caller is busy with an earlier result."""
        return _pumped(self, jobs)

    def close(self) -> None:
        with self._starting:
            self._closed = True
            for lane in self._lanes.values():
                if lane.worker is not None:
                    lane.worker.kill()
                    _reap_later(lane.worker)
                    lane.worker = None

    def __enter__(self) -> WorkerLanes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lane(self, name: Lane) -> _Lane:
        return self._lanes.setdefault(name, _Lane(name))

    def _dispatch(self, lane: _Lane, *, own: bool) -> Iterator[JobResult]:
        """Send the lane's first job whose base is ready (jobs still waiting keep their place),
        or without ``own`` the first ready job another lane spares it; yields the jobs that
        cannot run because their base failed."""
        for owner, job in _offered(list(self._lanes.values()), lane, own=own):
            if job.base is not None and job.base_artifact is None:
                done = self._finished.get(job.base.key)
                if done is None:
                    continue  # its base is still to come
                owner.queue.remove(job)
                if not done.ok:
                    base_error = (done.error or "no artifact").split(": ", 1)[-1]
                    yield JobResult(job, error=f"{job.target}: {base_error}")
                    continue
                job = replace(job, base_artifact=str(done.artifact))
            else:
                owner.queue.remove(job)
            with self._starting:
                if self._closed:
                    owner.queue.appendleft(job)  # reported as not run
                    return
                if lane.worker is None or not lane.worker.alive:
                    lane.worker = Worker(lane.name, self.workdir, preload=False)
                lane.worker.send(job)
            return

    def _collect(self, busy: list[_Lane]) -> list[JobResult]:
        """Wait for at least one busy lane to answer or overrun; those lanes become idle."""
        working = [(lane, lane.worker) for lane in busy if lane.worker is not None]
        if not working:  # closed meanwhile
            return []
        deadline = max(0.0, self.step_timeout - max(w.elapsed for _, w in working))
        try:
            ready = wait([w.conn for _, w in working], timeout=deadline)
        except OSError:  # a worker closed meanwhile: the lanes are closing
            if self._closed:
                return []
            raise
        results = []
        for lane, worker in working:
            if worker.current is None:  # stopped meanwhile
                continue
            job, elapsed = worker.current, worker.elapsed
            if worker.conn in ready:
                try:
                    results.append(worker.receive())
                except (EOFError, OSError):
                    results.append(JobResult(job, seconds=elapsed, error=(
                        f"{job.target}: the converter or runtime crashed ({worker.death()}); "
                        "qcheck isolated it")))
                    self._stop(lane)
            elif elapsed >= self.step_timeout:
                self._stop(lane)
                results.append(JobResult(job, seconds=elapsed, error=(
                    f"{job.target}: timed out after {self.step_timeout:g} s (worker stopped)")))
        return results

    def _stop(self, lane: _Lane) -> None:
        if lane.worker is not None:
            lane.worker.stop()
            lane.worker = None


def _offered(lanes: list[_Lane], lane: _Lane, *, own: bool) -> Iterator[tuple[_Lane, Job]]:
    """The lane's own jobs in order, or those other lanes spare it, each with its queue's
    lane."""
    if own:
        yield from ((lane, job) for job in list(lane.queue))
        return
    for other in lanes:
        if other is not lane:
            yield from ((other, job) for job in list(other.queue) if job.spare_lane == lane.name)


def _not_run(job: Job, *, stopped: bool) -> JobResult:
    """A job left in its queue: the lanes were closed, or its base never ran."""
    if stopped:
        return JobResult(job, error=f"{job.target}: not run: the workers were stopped")
    base = job.base.target if job.base else "?"
    return JobResult(job, error=f"{job.target}: internal error: its base {base} never ran")


def _pumped(lanes: WorkerLanes, jobs: Sequence[Job]) -> Iterator[JobResult]:
    results: queue.Queue[JobResult | BaseException | None] = queue.Queue()

    def pump() -> None:
        try:
            for result in lanes.run(jobs):
                results.put(result)
        except BaseException as exc:  # handed to the caller's thread
            results.put(exc)
        finally:
            results.put(None)

    thread = threading.Thread(target=pump, name="qcheck-lanes", daemon=True)
    thread.start()
    try:
        while (item := results.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if thread.is_alive():  # the caller stopped early: stop the workers too
            lanes.close()
            thread.join(timeout=10)
