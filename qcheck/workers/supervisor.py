"""Worker processes: start one for a lane, hand it a job, wait for its reply, stop it.

A worker is a fresh interpreter running ``python -m qcheck.workers.entry`` (never the caller's
``__main__``: a user's script, training code and all, is not run again in every worker),
talking over a socket pair. Only process supervision lives here; what waits on what is the
scheduler's business.
"""

from __future__ import annotations

import signal
import subprocess
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from qcheck.jobs import Job, Lane
from qcheck.workers import ahead

__all__ = ["Worker"]


class Worker:
    """One worker process of a lane, with the job it is busy with (if any): the one started
    ahead for the lane (``ahead``) if there is one, else a new one."""

    def __init__(self, lane: Lane, workdir: Path, *, preload: bool):
        temp = ahead.temp_folder(workdir, str(lane))
        temp.mkdir(exist_ok=True)
        self.lane = lane
        started = ahead.adopt(str(lane))
        if started is None:
            self.process, ours = ahead.spawn(str(lane), str(workdir), preload=preload,
                                             env={"TMPDIR": str(temp)})
        else:
            self.process, ours = started
        self.conn: Connection = Connection(ours.detach())
        if started is not None:
            self.conn.send(str(workdir))  # it waits for its work folder before any job
        self.current: Job | None = None
        self.started = 0.0

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

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
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "it stopped answering"
        if code < 0:
            try:
                how = signal.Signals(-code).name
            except ValueError:
                how = f"signal {-code}"
            if how == "SIGKILL":
                how += ", possibly out of memory"
            return how
        return f"exit code {code}"

    def stop(self) -> None:
        self.kill()
        self.reap()

    def kill(self) -> None:
        """Kill without waiting (``reap`` waits): the kernel takes a while to free a worker's
        memory (gigabytes with TensorFlow). A worker has written everything it reported
        before replying, so nothing is lost; a polite exit would spend most of a second
        tearing TensorFlow down."""
        self.conn.close()
        if self.process.poll() is None:
            self.process.kill()

    def reap(self) -> None:
        self.process.wait()
        self.current = None
