"""Work folders: one per check, removed on every exit path, and swept by the next check when
a killed one (SIGKILL, a crash of the machine) could not remove its own."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PREFIX", "work_folder"]

PREFIX = "qcheck-"
_OWNER = ".qcheck-owner"  # "<pid> <process start time>": whose folder this is


@contextlib.contextmanager
def work_folder() -> Iterator[Path]:
    _sweep_stale(Path(tempfile.gettempdir()))
    with tempfile.TemporaryDirectory(prefix=PREFIX) as name:
        folder = Path(name)
        (folder / _OWNER).write_text(_identity(os.getpid()) or str(os.getpid()))
        yield folder


def _identity(pid: int) -> str | None:
    """The pid and its start time (so a reused pid is not taken for the owner), or ``None``
    when no such process runs."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return f"{pid} {fields[19]}"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return str(pid)


def _sweep_stale(root: Path) -> None:
    with contextlib.suppress(OSError):
        for folder in root.glob(f"{PREFIX}*"):
            with contextlib.suppress(OSError, ValueError):
                owner = (folder / _OWNER).read_text().strip()
                if owner and _identity(int(owner.split()[0])) != owner:
                    shutil.rmtree(folder, ignore_errors=True)
