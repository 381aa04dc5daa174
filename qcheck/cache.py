"""On-disk cache of artifacts, their outputs, references and verdicts, that checks itself.

Keys hash everything that determines an entry (``qcheck.keys``) plus qcheck's own source and
the versions of every library that can change a result. Every file is stored with the SHA-256
and size of what was written; a read checks them, and a damaged, truncated or replaced file is
discarded with one warning line and recomputed by the caller: never shipped, never fatal.
``QCHECK_CACHE_DIR`` chooses the folder (default: the platform cache folder); ``--no-cache``
turns it off. Writes go through a temporary file and a rename, so concurrent checks sharing a
cache only ever see whole files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import threading
from collections.abc import Callable
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Cache", "default_cache_dir", "file_digest", "library_versions", "source_digest"]

# Every library whose version can change an artifact, an output, a metric, a chart or a page.
_LIBRARIES = ("tensorflow", "keras", "tf-keras", "tensorflow-model-optimization", "tf2onnx",
              "onnx", "onnxruntime", "onnxconverter-common", "ai-edge-litert", "protobuf",
              "numpy", "scipy", "scikit-image", "pillow", "h5py", "matplotlib", "jinja2")
_SOURCES = ("qcheck", "converters")
_DIGEST = ".sha256"


@cache
def library_versions() -> dict[str, str]:
    found = {}
    for name in _LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    return found


@cache
def source_digest() -> str:
    """One hash of qcheck's own code (and templates): changed code never reuses old entries."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for package in _SOURCES:
        for path in sorted((root / package).rglob("*")):
            if path.suffix in (".py", ".j2") and path.is_file():
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    if os.environ.get("QCHECK_CACHE_DIR"):
        return Path(os.environ["QCHECK_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qcheck"


_warned: set[Path] = set()
_warn_lock = threading.Lock()
# Files this process has already checked, by (mtime, size): each is hashed once per run.
_verified: dict[Path, tuple[int, int]] = {}


class Cache:
    """A folder of entries; each entry is a folder named by its key. Disabled: a no-op."""

    def __init__(self, root: Path | None = None, enabled: bool = True):
        self.root = root or default_cache_dir()
        self.enabled = enabled

    @staticmethod
    def key(**parts: Any) -> str:
        payload = json.dumps({"parts": parts, "versions": library_versions(),
                              "qcheck": source_digest()}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:40]

    def get_file(self, key: str, name: str) -> Path | None:
        """The entry's file, if it is there and whole (as written)."""
        if not self.enabled:
            return None
        path = self._entry(key) / name
        if not path.is_file():
            return None
        try:
            stat = path.stat()
            seen = (stat.st_mtime_ns, stat.st_size)
            if _verified.get(path) == seen:
                return path
            recorded, size = (path.parent / (name + _DIGEST)).read_text().split()
            whole = stat.st_size == int(size) and file_digest(path) == recorded
        except (OSError, ValueError):
            whole = False
        if not whole:
            self.discard(key, name, "its content does not match what was stored")
            return None
        _verified[path] = seen
        return path

    def get_array(self, key: str, name: str, *, mmap: bool = False) -> np.ndarray | None:
        return self.read(key, name, lambda path: np.load(path, mmap_mode="r" if mmap else None,
                                                         allow_pickle=False))

    def get_json(self, key: str, name: str) -> Any:
        return self.read(key, name, lambda path: json.loads(path.read_text(encoding="utf-8")))

    def read(self, key: str, name: str, parse: Callable[[Path], Any]) -> Any:
        """``parse`` of the entry's file; an entry it cannot parse is discarded (``None``)."""
        path = self.get_file(key, name)
        if path is None:
            return None
        try:
            return parse(path)
        except Exception as exc:  # any reader's failure means the same: not usable
            self.discard(key, name, f"it cannot be read ({type(exc).__name__})")
            return None

    def discard(self, key: str, name: str, reason: str) -> None:
        """Drop a damaged file, saying so once: the caller recomputes it."""
        path = self._entry(key) / name
        _verified.pop(path, None)
        for stale in (path, path.parent / (name + _DIGEST)):
            with contextlib.suppress(OSError):
                stale.unlink()
        with _warn_lock:
            if path not in _warned:
                _warned.add(path)
                print(f"warning: discarded the cache entry {path} ({reason}); recomputing",
                      file=sys.stderr, flush=True)

    def put_file(self, key: str, name: str, source: Path) -> None:
        self._write(key, name, lambda temp: shutil.copyfile(source, temp))

    def put_array(self, key: str, name: str, array: np.ndarray) -> None:
        def write(temp: Path) -> None:
            with temp.open("wb") as handle:
                np.save(handle, array)

        self._write(key, name, write)

    def put_text(self, key: str, name: str, text: str) -> None:
        self._write(key, name, lambda temp: temp.write_text(text, encoding="utf-8"))

    def put_json(self, key: str, name: str, value: Any) -> None:
        self.put_text(key, name, json.dumps(value))

    def _entry(self, key: str) -> Path:
        return self.root / key[:2] / key

    def _write(self, key: str, name: str, write: Callable[[Path], object]) -> None:
        """Write through temporary files and renames; a cache that cannot be written (a full
        disk, a read-only folder) only costs time, and leaves no temporary file behind."""
        if not self.enabled:
            return
        target = self._entry(key) / name
        temp = target.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
        record = target.with_name(f".{name}{_DIGEST}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write(temp)
            record.write_text(f"{file_digest(temp)} {temp.stat().st_size}\n")
            os.replace(temp, target)
            os.replace(record, target.with_name(name + _DIGEST))
        except OSError:
            for leftover in (temp, record):
                with contextlib.suppress(OSError):
                    leftover.unlink()
