"""Worker processes: start one for a lane, hand it a job, wait for its reply, stop it.

Only process supervision lives here; what waits on what is the scheduler's business.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from qcheck.jobs import Job, Lane

__all__ = ["Worker"]


class Worker:
    """One worker process of a lane, with the job it is busy with (if any)."""

    def __init__(self, lane: Lane, workdir: Path, *, preload: bool):
        from qcheck.workers.entry import worker_main

        context = mp.get_context("spawn")
        parent, child = context.Pipe()
        self.lane = lane
        self.process: Any = context.Process(
            target=worker_main, args=(child, str(workdir), lane, preload),
            name=f"qcheck-{lane}", daemon=True)
        self.process.start()
        child.close()
        self.conn: Connection = parent
        self.current: Job | None = None
        self.started = 0.0

    @property
    def alive(self) -> bool:
        return bool(self.process.is_alive())

    def send(self, job: Job) -> None:
        self.conn.send(job)
        self.current, self.started = job, time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def receive(self) -> Any:
        """The reply to the current job; ``EOFError``/``OSError`` when the worker died."""
        reply = self.conn.recv()
        self.current = None
        return reply

    def death(self) -> str:
        """How the worker ended, in words."""
        self.process.join(timeout=5)
        code = self.process.exitcode
        if code is not None and code < 0:
            try:
                how = signal.Signals(-code).name
            except ValueError:
                how = f"signal {-code}"
            if how == "SIGKILL":
                how += ", possibly out of memory"
            return how
        return f"exit code {code}"

    def stop(self) -> None:
        # A worker has written everything it reported before replying, so nothing is lost by
        # killing it; a polite exit would spend most of a second tearing TensorFlow down.
        self.conn.close()
        self.process.kill()
        self.process.join()
        self.current = None
