"""Inspect a model file before Keras reads it; refuse anything that could run code or reach out.

Keras ``safe_mode=True`` already refuses Python lambdas. These checks come first and add what it
does not promise: bounded archives with no links or paths outside them, HDF5 files with no
external links, virtual or external datasets, and configs that name only Keras's own modules.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qcheck.errors import ModelLoadError

__all__ = ["MAX_ARCHIVE_BYTES", "inspect_config", "inspect_h5", "inspect_keras_archive"]

MAX_ARCHIVE_BYTES = 4 * 1024**3
MAX_MEMBERS = 10_000
MAX_RATIO = 200  # uncompressed / compressed, for members (and archives) big enough to matter
RATIO_FLOOR = 1024**2  # below this many uncompressed bytes, a ratio means nothing
_SAFE_MODULE = "keras"  # "keras" itself or a submodule "keras.…", nothing else
_CODE_LAYERS = {"Lambda", "TFOpLambda", "SlicingOpLambda"}


def inspect_keras_archive(path: Path, *, custom: bool = False) -> list[str]:
    """Refuse what could run code or reach out; returns notes on what will be ignored."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            _check_members(path, members)
            names = {m.filename for m in members}
            if "config.json" not in names:
                raise ModelLoadError(f"{path} is not a Keras archive (no config.json inside)")
            try:
                config = json.loads(archive.read("config.json"))
            except (ValueError, UnicodeDecodeError):
                raise ModelLoadError(f"{path}: config.json is not valid JSON") from None
            notes = inspect_config(config, path, custom=custom)
            for member in members:
                if member.filename.endswith(".h5"):
                    inspect_h5(io.BytesIO(archive.read(member)), f"{path}:{member.filename}",
                               custom=custom)
            return notes
    except zipfile.BadZipFile as exc:
        raise ModelLoadError(f"{path} is not a readable Keras archive ({exc})") from None


def _check_members(path: Path, members: list[zipfile.ZipInfo]) -> None:
    if len(members) > MAX_MEMBERS:
        raise ModelLoadError(f"refused {path}: {len(members)} archive members")
    total = packed = 0
    for member in members:
        name = member.filename
        parts = Path(name).parts
        if name.startswith(("/", "\\")) or ".." in parts or ":" in name.split("/")[0]:
            raise ModelLoadError(f"refused {path}: archive member {name!r} points outside it")
        mode = member.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ModelLoadError(f"refused {path}: archive member {name!r} is a link")
        total += member.file_size
        packed += member.compress_size
        if member.file_size > RATIO_FLOOR and \
                member.file_size > MAX_RATIO * max(member.compress_size, 1):
            raise ModelLoadError(f"refused {path}: member {name!r} expands "
                                 f"{member.file_size // max(member.compress_size, 1)}× "
                                 "(a zip bomb?)")
    if total > RATIO_FLOOR and total > MAX_RATIO * max(packed, 1):
        raise ModelLoadError(f"refused {path}: the archive expands {total // max(packed, 1)}× "
                             f"to {total / 1024**2:.0f} MiB (a zip bomb?)")
    if total > MAX_ARCHIVE_BYTES:
        raise ModelLoadError(f"refused {path}: archive expands to {total / 1024**3:.1f} GiB "
                             f"(limit {MAX_ARCHIVE_BYTES / 1024**3:.0f} GiB)")


def inspect_h5(source: Path | io.BytesIO, label: str | Path, *, custom: bool = False
               ) -> list[str]:
    """Refuse external links, virtual datasets and external raw storage; check the config."""
    import h5py

    try:
        handle = h5py.File(source, "r")
    except OSError:
        raise ModelLoadError(f"{label} is not a readable HDF5 file") from None
    with handle:
        for name, link in _links(handle):
            if isinstance(link, h5py.ExternalLink):
                raise ModelLoadError(f"refused {label}: HDF5 external link at /{name} "
                                     f"(to {link.filename})")
            if isinstance(link, h5py.HardLink):
                item = handle.get(name)
                if isinstance(item, h5py.Dataset):
                    if item.is_virtual:
                        raise ModelLoadError(f"refused {label}: virtual dataset at /{name}")
                    if item.external:
                        raise ModelLoadError(f"refused {label}: dataset /{name} stores its "
                                             "data in an external file")
        raw = handle.attrs.get("model_config")
        if raw is not None:
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            try:
                return inspect_config(json.loads(text), label, custom=custom)
            except ValueError:
                raise ModelLoadError(f"{label}: model_config is not valid JSON") from None
    return []


def _links(group: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    import h5py

    for key in group:
        name = f"{prefix}{key}"
        link = group.get(key, getlink=True)
        yield name, link
        if isinstance(link, h5py.HardLink):
            child = group.get(key)
            if isinstance(child, h5py.Group):
                yield from _links(child, f"{name}/")


def inspect_config(config: Any, label: str | Path, *, custom: bool = False) -> list[str]:
    """Refuse layers that carry Python code and objects from modules outside Keras (unless
    ``custom``: the user opted in to their own code). The compile config (loss, metrics,
    optimizer) is never loaded, so it is not inspected; a note says it is ignored."""
    notes = []
    if isinstance(config, dict) and config.get("compile_config"):
        compiled = config["compile_config"]
        config = {k: v for k, v in config.items() if k != "compile_config"}
        if any(_foreign(node) for node in _walk(compiled)):
            notes.append(f"note: ignoring the compile config of {label} (its loss, metrics or "
                         "optimizer use your code): qcheck never trains or evaluates with it")
    if custom:
        return notes
    for node in _walk(config):
        class_name = node.get("class_name")
        if class_name in _CODE_LAYERS:
            name = (node.get("config") or {}).get("name", "?") \
                if isinstance(node.get("config"), dict) else "?"
            raise ModelLoadError(
                f"refused {label}: layer {name!r} is a {class_name}, which carries Python code; "
                "qcheck runs code from a model file only with --custom-objects (or rebuild it "
                "without Lambda layers)")
        module = node.get("module")
        if isinstance(module, str) and module != _SAFE_MODULE and \
                not module.startswith(f"{_SAFE_MODULE}."):
            raise ModelLoadError(
                f"refused {label}: it references Python module {module!r} ({class_name}); "
                "qcheck loads your own layers only with --custom-objects FILE.py")
        registered = node.get("registered_name")
        if isinstance(registered, str) and ">" in registered and class_name not in (None, ""):
            raise ModelLoadError(
                f"refused {label}: custom object {registered!r} ({class_name}) needs your "
                "code to load; give it with --custom-objects FILE.py")
    return notes


def _foreign(node: dict[str, Any]) -> bool:
    module, registered = node.get("module"), node.get("registered_name")
    return (isinstance(module, str) and module != _SAFE_MODULE
            and not module.startswith(f"{_SAFE_MODULE}.")) or (
        isinstance(registered, str) and ">" in registered)


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _walk(child)
    elif isinstance(value, list):
        for child in value:
            yield from _walk(child)
