"""Workers started ahead of their check, and how any worker process is started.

A cold check waits on its TensorFlow worker: it imports TensorFlow (1.4 s) and exports the
model before either lane has work, with a core to spare meanwhile. ``qcheck check`` starts
that worker here, first thing in its process (``start_for_command``), before it imports the
rest of qcheck, parses its flags and looks the model up in the cache (0.2 s), so the import
begins 0.2 s sooner. The worker imports what its lane needs, then waits for its work folder,
which the check hands it when its lanes take it over (``adopt``); a check that finds its
model in the cache wants no worker and kills it (``discard``), a fifth of a second into its
start. Only the standard library here: nothing may delay the start.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["HANDLERS_MODULE", "PENDING_FOLDER", "adopt", "discard", "spawn", "start",
           "start_for_command", "temp_folder"]

# What workers do with jobs: a module above this package, named rather than imported.
HANDLERS_MODULE = "qcheck.handlers"
# A worker's work-folder argument when the folder is sent to it later (it was started ahead).
PENDING_FOLDER = "-"
# The commands whose first step is a check that converts (a cold one waits on TensorFlow).
_COMMANDS = ("check",)
# Only the lane a cold check waits on: the runtime lane's worker (ONNX Runtime, 0.3 s) has
# seconds to spare, and started here too it took a warm check's processor: 0.55 s, not 0.44 s.
_LANES = ("tensorflow",)

_started: dict[str, tuple[subprocess.Popen[bytes], socket.socket]] = {}


def spawn(lane: str, workdir: str, *, preload: bool, env: Mapping[str, str] | None = None
          ) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """A worker process for ``lane`` (``python -m qcheck.workers.entry``) and this side of the
    socket pair it talks over."""
    ours, theirs = socket.socketpair()
    command = [sys.executable, "-m", "qcheck.workers.entry", str(theirs.fileno()), workdir,
               lane, "preload" if preload else "lazy", HANDLERS_MODULE]
    # The workers import qcheck from where this process found it. tf2onnx walks sets of
    # tensor names, whose order follows the string hash: with one seed for every worker, an
    # ONNX export is the same bytes from run to run.
    path = os.pathsep.join(p for p in sys.path if p)
    process = subprocess.Popen(command, pass_fds=(theirs.fileno(),),
                               env={**os.environ, "PYTHONPATH": path, "PYTHONHASHSEED": "0",
                                    **(env or {})},
                               stdin=subprocess.DEVNULL)
    theirs.close()
    return process, ours


def temp_folder(workdir: Path, lane: str) -> Path:
    """A worker's temporary folder (its ``TMPDIR``). A worker is killed, not asked to exit, so
    its temporary files (TensorFlow's autograph sources, say) go in the work folder, which the
    check removes."""
    return workdir / f"tmp-{lane}"


def start_for_command(argv: Sequence[str]) -> None:
    """Start the workers a command will want, if it is one that checks (not its ``--help``)."""
    if argv and argv[0] in _COMMANDS and not {"-h", "--help"} & set(argv):
        start(_LANES)


def start(lanes: Sequence[str]) -> None:
    """Start a worker for each lane that has none waiting; those not adopted by exit die."""
    for lane in lanes:
        if lane not in _started:
            _started[lane] = spawn(lane, PENDING_FOLDER, preload=True)


def adopt(lane: str) -> tuple[subprocess.Popen[bytes], socket.socket] | None:
    """The worker started ahead for ``lane``, if it is still alive; the caller sends it its
    work folder before any job."""
    found = _started.pop(lane, None)
    if found is not None and found[0].poll() is not None:
        found[1].close()
        return None
    return found


@atexit.register
def discard() -> None:
    """Kill the workers nobody adopted (a check answered from the cache, a usage error: at
    exit)."""
    while _started:
        _lane, (process, ours) = _started.popitem()
        ours.close()
        if process.poll() is None:
            process.kill()
        process.wait()
