"""Conversions and interpreters run in worker processes, so a crash cannot take qcheck down.

TensorFlow's and LiteRT's security notes say to treat a model as untrusted code and that their
interpreters are not sandboxes; a segfault, an abort or an out-of-memory kill in one conversion
becomes that target's ``error`` here, and the other targets still finish.

Jobs are grouped into two *lanes*, each one long-lived worker taking its jobs in turn, in
parallel on the machine's two cores. Only the TensorFlow lane loads TensorFlow and the model:
it converts to TFLite, exports the float ONNX and computes the Keras reference. The runtime lane
converts the ONNX variants from that export and runs every artifact, so it stays small. A worker
that dies or overruns its step timeout is replaced, and its lane carries on with the jobs left.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_STEP_TIMEOUT", "QAT_LANE", "RUNTIME_LANE", "TENSORFLOW_LANE", "ConvertJob",
           "JobResult", "WorkerLanes"]

# TensorFlow's converter, the float ONNX export and the Keras reference need TensorFlow; ONNX
# Runtime's quantizer and every interpreter (LiteRT, ONNX Runtime) do not.
TENSORFLOW_LANE = "tensorflow"
RUNTIME_LANE = "runtime"
# Quantization-aware training needs tf-keras (Keras 2) for tensorflow-model-optimization, which
# TensorFlow only gives a process that sets TF_USE_LEGACY_KERAS before loading it.
QAT_LANE = "qat"

# Seconds one conversion-and-run step may take before its worker is stopped.
DEFAULT_STEP_TIMEOUT = 900.0


@dataclass(frozen=True)
class ConvertJob:
    """Convert ``target`` from ``model_path`` and run it on the evaluation images."""

    key: str  # unique per job; names the files the worker writes
    target: str
    model_path: str
    signed_io: bool
    lane: str
    options: dict[str, Any] = field(default_factory=dict)
    run: bool = True
    artifact: str | None = None  # run this existing artifact instead of converting
    # or "reference": the float Keras outputs on both image halves; or "qat": a model
    # fine-tuned with quantization-aware training
    kind: str = "convert"
    # A job whose artifact this one starts from (the float ONNX export, made in the
    # TensorFlow lane so the ONNX Runtime lane never loads TensorFlow); ``base_artifact`` is
    # its file, filled in from the cache or when that job finishes.
    base: ConvertJob | None = None
    base_artifact: str | None = None
    # Filled in by ``WorkerLanes`` when the job is dispatched.
    calibration: str = ""
    evaluation: str = ""
    input_range: str = "0:1"


@dataclass(frozen=True)
class JobResult:
    job: ConvertJob
    artifact: Path | None = None
    outputs: Path | None = None
    seconds: float = 0.0
    error: str | None = None
    error_kind: str | None = None  # "model": the model itself could not be loaded
    extra: str | None = None  # a reference job's per-layer calibration ranges (.npz)
    tensorflow_loaded: bool = False  # whether the worker that ran it had loaded TensorFlow


@dataclass
class _Lane:
    name: str
    queue: deque[ConvertJob]
    process: Any = None
    conn: Connection | None = None
    current: ConvertJob | None = None
    started: float = 0.0


class WorkerLanes:
    """Runs ``ConvertJob``s in one worker process per lane and yields results as they finish.

    Lanes live until ``close``: a check starts them early (``prestart``) so TensorFlow loads
    while images are read, and later verification jobs reuse the warm workers. A job with a
    ``base`` waits in its lane until that job has finished (in this run or an earlier one).
    """

    def __init__(self, workdir: Path, step_timeout: float | None = None):
        self.workdir = workdir
        self.step_timeout = step_timeout or float(
            os.environ.get("QCHECK_STEP_TIMEOUT") or DEFAULT_STEP_TIMEOUT)
        self.calibration = ""
        self.evaluation = ""
        self.input_range = "0:1"
        self._context = mp.get_context("spawn")
        self._lanes: dict[str, _Lane] = {}
        self._finished: dict[str, JobResult] = {}

    def images(self, calibration: Path, evaluation: Path, input_range: str) -> None:
        self.calibration, self.evaluation = str(calibration), str(evaluation)
        self.input_range = input_range

    def prestart(self, names: Sequence[str]) -> None:
        for name in names:
            lane = self._lanes.setdefault(name, _Lane(name, deque()))
            if lane.process is None:
                self._start(lane, preload=True)

    def run(self, jobs: Sequence[ConvertJob]) -> Iterator[JobResult]:
        active: list[_Lane] = []
        for job in jobs:
            lane = self._lanes.setdefault(job.lane, _Lane(job.lane, deque()))
            lane.queue.append(replace(job, calibration=self.calibration,
                                      evaluation=self.evaluation,
                                      input_range=self.input_range))
            if lane not in active:
                active.append(lane)
        try:
            while True:
                for lane in active:
                    if lane.current is None:
                        yield from self._dispatch(lane)
                busy = [lane for lane in active if lane.current]
                if not busy:
                    break
                for result in self._collect(busy):
                    self._finished[result.job.key] = result
                    yield result
            for lane in active:  # only jobs whose base was never run can be left
                while lane.queue:
                    job = lane.queue.popleft()
                    yield JobResult(job, error=f"{job.target}: internal error: its base "
                                               f"{job.base.target if job.base else '?'} never ran")
        except BaseException:
            self.close()
            raise

    def run_in_background(self, jobs: Sequence[ConvertJob]) -> Iterator[JobResult]:
        """``run`` on a thread of its own: lanes get their next job the moment they finish,
        even while the caller is busy with an earlier result."""
        results: queue.Queue[JobResult | BaseException | None] = queue.Queue()

        def pump() -> None:
            try:
                for result in self.run(jobs):
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
                self.close()
                thread.join(timeout=10)

    def close(self) -> None:
        for lane in self._lanes.values():
            self._stop(lane)

    def __enter__(self) -> WorkerLanes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _dispatch(self, lane: _Lane) -> Iterator[JobResult]:
        """Send the lane's first job whose base is ready (jobs still waiting keep their place);
        yields the jobs that cannot run because their base failed."""
        lane.current = None
        for job in list(lane.queue):
            if job.base is not None and job.base_artifact is None:
                done = self._finished.get(job.base.key)
                if done is None:
                    continue  # its base is still to come
                lane.queue.remove(job)
                if done.error is not None or done.artifact is None:
                    base_error = (done.error or "no artifact").split(": ", 1)[-1]
                    yield JobResult(job, error=f"{job.target}: {base_error}")
                    continue
                job = replace(job, base_artifact=str(done.artifact))
            else:
                lane.queue.remove(job)
            if lane.process is None or not lane.process.is_alive():
                self._start(lane, preload=False)
            assert lane.conn is not None
            lane.conn.send(job)
            lane.current, lane.started = job, time.monotonic()
            return

    def _collect(self, busy: list[_Lane]) -> list[JobResult]:
        """Wait for at least one busy lane to answer or overrun; those lanes become idle."""
        deadline = min(lane.started for lane in busy) + self.step_timeout
        ready = wait([lane.conn for lane in busy if lane.conn is not None],
                     timeout=max(0.0, deadline - time.monotonic()))
        results = []
        for lane in busy:
            job = lane.current
            assert job is not None and lane.conn is not None
            elapsed = time.monotonic() - lane.started
            if lane.conn in ready:
                try:
                    message = lane.conn.recv()
                except (EOFError, OSError):
                    results.append(JobResult(job, seconds=elapsed, error=self._death(lane, job)))
                    self._stop(lane)
                else:
                    results.append(_result(job, message))
                lane.current = None
            elif elapsed >= self.step_timeout:
                self._stop(lane)
                results.append(JobResult(job, seconds=elapsed, error=(
                    f"{job.target}: timed out after {self.step_timeout:g} s (worker stopped)")))
        return results

    def _death(self, lane: _Lane, job: ConvertJob) -> str:
        process = lane.process
        process.join(timeout=5)
        code = process.exitcode
        if code is not None and code < 0:
            try:
                how = signal.Signals(-code).name
            except ValueError:
                how = f"signal {-code}"
            if how == "SIGKILL":
                how += ", possibly out of memory"
        else:
            how = f"exit code {code}"
        return f"{job.target}: the converter or runtime crashed ({how}); qcheck isolated it"

    def _start(self, lane: _Lane, *, preload: bool) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main, args=(child, str(self.workdir), lane.name, preload),
            name=f"qcheck-{lane.name}", daemon=True,
        )
        process.start()
        child.close()
        lane.process, lane.conn = process, parent

    def _stop(self, lane: _Lane) -> None:
        # A worker has written everything it reported before replying, so nothing is lost by
        # killing it; a polite exit would spend most of a second tearing TensorFlow down.
        if lane.conn is not None:
            lane.conn.close()
        if lane.process is not None:
            lane.process.kill()
            lane.process.join()
        lane.process, lane.conn, lane.current = None, None, None


def _result(job: ConvertJob, message: dict[str, Any]) -> JobResult:
    return JobResult(
        job=job,
        artifact=Path(message["artifact"]) if message.get("artifact") else None,
        outputs=Path(message["outputs"]) if message.get("outputs") else None,
        seconds=float(message.get("seconds", 0.0)),
        error=message.get("error"),
        error_kind=message.get("error_kind"),
        extra=message.get("stats"),
        tensorflow_loaded=bool(message.get("tensorflow_loaded")),
    )


def _worker_main(conn: Connection, workdir: str, lane: str, preload: bool) -> None:
    """One worker: convert and run jobs until its pipe closes or it is killed."""
    from qcheck.worker_tasks import WorkerState

    if lane == QAT_LANE:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    if lane == RUNTIME_LANE:
        # The TensorFlow lane (conversions, export, reference) is the critical path; this
        # lane has less to do and yields the cores to it.
        os.nice(10)
    if preload and lane == RUNTIME_LANE:
        import onnxruntime  # noqa: F401 - loading it is the point
    elif preload:
        from qcheck.quiet import import_tensorflow

        import_tensorflow()
    state = WorkerState(Path(workdir))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = state.handle(job)
        except Exception as exc:  # a bug, not a model problem: report it, keep the worker alive
            reply = {"error": f"{job.target}: internal error: {exc!r}",
                     "trace": traceback.format_exc()}
        reply["tensorflow_loaded"] = "tensorflow" in sys.modules
        conn.send(reply)
