"""Writing into the user's output folder without ever clobbering what they own."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from qcheck.errors import UsageError

__all__ = ["ARTIFACTS_DIR", "atomic_write", "prepare_out_dir"]

ARTIFACTS_DIR = "artifacts"  # artifacts/<target>.tflite|.onnx in the output folder


def prepare_out_dir(out: str | os.PathLike[str]) -> Path:
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {folder} is an existing file; give a folder path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --out folder {folder}: {exc.strerror}") from None
    return folder


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write to a temporary file beside ``path`` and rename, so readers never see half a file."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
