"""Writing into the user's output folder without ever clobbering what they own.

A report is written as a unit: every file first into a staging folder inside the output
folder (same file system), then renamed into place. A failure while staging (a full disk, a
file too large) leaves the previous report whole; renames cannot run out of space.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from qcheck.errors import QcheckError, UsageError
from qcheck.types import ARTIFACTS_DIR

__all__ = ["ARTIFACTS_DIR", "OutputError", "atomic_write", "out_folder", "prepare_out_dir",
           "write_folder"]

_STAGING = ".qcheck-staging-"


class OutputError(QcheckError):
    """The output folder could not be written (full, read-only, …); nothing in it changed."""


def prepare_out_dir(out: str | os.PathLike[str]) -> Path:
    """The output folder, created if needed and proven writable now, before any work."""
    folder = Path(out)
    try:
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"--out {folder} is an existing file; give a folder path")
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=_STAGING, dir=folder)
        os.rmdir(probe)
    except OSError as exc:
        raise UsageError(f"--out folder {folder} cannot be written: "
                         f"{exc.strerror or exc}") from None
    return folder


@contextlib.contextmanager
def out_folder(out: str | os.PathLike[str]) -> Iterator[Path]:
    """``prepare_out_dir`` for the work in the ``with`` block: when that work fails (a refused
    model, say), the folders this run created are removed again if they are still empty."""
    folder = Path(out)
    made = [p for p in (folder, *folder.parents) if not _exists(p)]  # deepest first
    prepared = prepare_out_dir(folder)
    try:
        yield prepared
    except BaseException:
        for path in made:
            with contextlib.suppress(OSError):  # not empty: something was written; keep it
                path.rmdir()
        raise


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long to be a file, say: prepare_out_dir reports it
        return False


def write_folder(folder: Path, files: Mapping[str, bytes | str],
                 owned: tuple[str, ...] = ()) -> None:
    """Replace ``files`` (relative names) in ``folder`` as a unit; files matching the
    ``owned`` patterns that this write does not contain are removed (they are an earlier
    run's), everything else in the folder is left alone."""
    prepare_out_dir(folder)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING, dir=folder))
    try:
        for name, data in files.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            _write(path, data)
        stale = {p for pattern in owned for p in folder.glob(pattern)} - \
            {folder / name for name in files}
        for name in files:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, folder / name)
        for path in stale:
            with contextlib.suppress(OSError):
                path.unlink()
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
        reason = "no space left (disk full or file size limit)" if full else exc.strerror
        raise OutputError(f"cannot write the report into {folder}: {reason}; the previous "
                          "report there is unchanged") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write to a temporary file beside ``path`` and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        _write(Path(temp), data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _write(path: Path, data: bytes | str) -> None:
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with path.open("wb") as stream:
        stream.write(payload)
    os.chmod(path, 0o666 & ~_umask())


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
