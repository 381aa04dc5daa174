"""On-disk cache of artifacts, their outputs and float references.

Keys hash everything that determines the bytes: the model's content, the target and its options,
the calibration and evaluation images, the input range and the versions of every library in the
path. ``QCHECK_CACHE_DIR`` chooses the folder (default: the platform cache folder); ``--no-cache``
turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Cache", "default_cache_dir", "library_versions"]

_LIBRARIES = ("qcheck", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime",
              "onnxconverter-common", "ai-edge-litert", "numpy", "scikit-image")


@cache
def library_versions() -> dict[str, str]:
    found = {}
    for name in _LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    return found


def default_cache_dir() -> Path:
    if os.environ.get("QCHECK_CACHE_DIR"):
        return Path(os.environ["QCHECK_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qcheck"


class Cache:
    """A folder of entries; each entry is a folder named by its key. Disabled: a no-op."""

    def __init__(self, root: Path | None = None, enabled: bool = True):
        self.root = root or default_cache_dir()
        self.enabled = enabled

    @staticmethod
    def key(**parts: Any) -> str:
        payload = json.dumps({"parts": parts, "versions": library_versions()}, sort_keys=True,
                             default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:40]

    def _entry(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get_file(self, key: str, name: str) -> Path | None:
        if not self.enabled:
            return None
        path = self._entry(key) / name
        return path if path.is_file() else None

    def _write(self, key: str, name: str, write: Callable[[Path], object]) -> None:
        """Write an entry through a temporary file and a rename; a cache that cannot be
        written only costs time, so failures are ignored."""
        if not self.enabled:
            return
        with contextlib.suppress(OSError):
            target = self._entry(key) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = target.with_name(f".{name}.{os.getpid()}.tmp")
            write(temp)
            os.replace(temp, target)

    def put_file(self, key: str, name: str, source: Path) -> None:
        self._write(key, name, lambda temp: shutil.copyfile(source, temp))

    def get_array(self, key: str, name: str) -> np.ndarray | None:
        path = self.get_file(key, name)
        if path is None:
            return None
        try:
            return np.load(path)
        except (OSError, ValueError):
            return None

    def put_array(self, key: str, name: str, array: np.ndarray) -> None:
        def write(temp: Path) -> None:
            with temp.open("wb") as handle:
                np.save(handle, array)

        self._write(key, name, write)

    def put_text(self, key: str, name: str, text: str) -> None:
        self._write(key, name, lambda temp: temp.write_text(text, encoding="utf-8"))

    def get_json(self, key: str, name: str) -> Any:
        path = self.get_file(key, name)
        if path is None:
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def put_json(self, key: str, name: str, value: Any) -> None:
        self.put_text(key, name, json.dumps(value))
