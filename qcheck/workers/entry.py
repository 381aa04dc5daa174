"""What runs inside a worker process: take jobs from the socket until it closes.

Started as ``python -m qcheck.workers.entry FD WORKDIR LANE preload|lazy HANDLERS`` by
``qcheck.workers.ahead.spawn`` (WORKDIR ``-``: the folder comes over the socket first, from
the check that adopts a worker started ahead). ``HANDLERS`` names the module whose
``WorkerState`` handles the jobs and whose ``preload`` imports what a lane's jobs will: the
work is registered from above (``qcheck.handlers`` reaches into analysis, fixes and
readiness), so this package, which only moves jobs between processes, imports none of it.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import sys
import tempfile
import traceback
from collections.abc import Iterator
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path

from qcheck.jobs import JobResult, Lane
from qcheck.workers.ahead import PENDING_FOLDER, temp_folder

__all__ = ["worker_main"]


def worker_main(conn: Connection, workdir: str, lane: Lane, preload: bool,
                handlers: str) -> None:
    """One worker: handle jobs until its pipe closes or it is killed. A worker started ahead
    of its check (``workdir`` is ``PENDING_FOLDER``) imports, then waits for its folder."""
    if lane is Lane.QAT:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    if lane is Lane.RUNTIME:
        # The TensorFlow lane (conversions, export, reference) is the critical path; this
        # lane has less to do and yields the cores to it.
        os.nice(10)
    with _modules_frozen():
        if preload and lane is Lane.RUNTIME:
            import onnxruntime  # noqa: F401 - loading it is the point
        elif preload:
            from qcheck.quiet import import_tensorflow

            import_tensorflow(plotting=False)
        module = importlib.import_module(handlers)
        if preload:
            module.preload(lane)
    if workdir == PENDING_FOLDER:
        try:
            workdir = conn.recv()
        except (EOFError, OSError):  # its check wanted no worker
            return
        _use_temp_folder(temp_folder(Path(workdir), str(lane)))
    state = module.WorkerState(Path(workdir))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result = state.handle(job)
        except Exception as exc:  # a bug, not a model problem: report it, keep the worker alive
            result = JobResult(job, error=f"{job.target}: internal error: {exc!r}")
            if os.environ.get("QCHECK_DEBUG"):
                traceback.print_exc()
        conn.send(replace(result, tensorflow_loaded="tensorflow" in sys.modules))


def _use_temp_folder(folder: Path) -> None:
    """What a worker started with its folder has from its environment (``TMPDIR``)."""
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = None  # found again from TMPDIR on next use


@contextlib.contextmanager
def _modules_frozen() -> Iterator[None]:
    """Import without the cycle collector, then keep what was imported out of its sight.

    Importing TensorFlow makes about 475k objects that live as long as the worker; the
    collector, running every 700 allocations, kept walking them: the import took 1.8-2.0 s
    with it and 1.4-1.5 s without, on the path every cold check waits on. Frozen (moved to the
    permanent generation), they are not walked again either: a full collection after a job
    that left cycles behind (``CycleCollector``) took 0.14 s, now under 0.01 s. What the jobs
    make later is collected as before."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


if __name__ == "__main__":
    fd, workdir, lane, preload, handlers = sys.argv[1:6]
    worker_main(Connection(int(fd)), workdir, Lane(lane), preload == "preload", handlers)
