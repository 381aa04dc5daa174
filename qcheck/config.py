"""Typed configuration from ``[tool.qcheck]`` in the user's ``pyproject.toml``.

The command line wins over the file; unknown keys are warned about, never silently ignored.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qcheck.errors import UsageError
from qcheck.limits import Tolerances, check_limit

if TYPE_CHECKING:
    from qcheck.limits import Thresholds
    from qcheck.settings import ImageSources, ModelSettings

__all__ = ["FileConfig", "config_from_table", "find_pyproject", "load_config"]


@dataclass(frozen=True)
class FileConfig:
    """Settings a project may pin; ``None`` means "not set here"."""

    targets: tuple[str, ...] | None = None
    calib: str | None = None
    eval: str | None = None
    input_range: str | None = None
    output_range: str | None = None
    output_kind: str | None = None
    # A Python file of the user's own layers: naming it here is the same explicit opt-in to
    # run that code as ``--custom-objects``.
    custom_objects: str | None = None
    input_size: str | None = None  # "HxW": the size a model with no fixed size runs at
    # What a model's other inputs are fed: "NAME=DIR" or "NAME=VALUE" each (a table in TOML).
    feed: tuple[str, ...] | None = None
    objective: str | None = None  # qcheck plan: latency, size or balanced
    max_delta_e: float | None = None
    max_delta_e_p95: float | None = None
    max_channel_bias: float | None = None
    min_sqnr_db: float | None = None
    min_class_agreement: float | None = None
    max_latency_ms: float | None = None
    max_size_kb: float | None = None
    tolerance_relative: float | None = None
    tolerance_absolute: float | None = None
    tolerance_db: float | None = None
    tolerance_agreement: float | None = None
    source: str | None = field(default=None, compare=False)

    def over(self, base: FileConfig) -> FileConfig:
        """These settings where set, else ``base``'s: the command line over ``[tool.qcheck]``,
        a manifest's model over its ``[defaults]``."""
        chosen = {f.name: value for f in fields(self)
                  if f.name != "source" and (value := getattr(self, f.name)) is not None}
        return replace(base, **chosen)

    def model_settings(self) -> ModelSettings:
        """How to read the model, with qcheck's defaults where nothing was set."""
        from qcheck.settings import ModelSettings

        return ModelSettings.build(self.input_range, self.output_range, self.output_kind,
                                   self.custom_objects, self.input_size, self.feed)

    def images(self) -> ImageSources:
        from qcheck.settings import ImageSources

        return ImageSources(self.calib, self.eval)

    def thresholds(self, **given: float | None) -> Thresholds:
        """The limits: each ``given`` one (the command line's; ``None``: not given), else this
        file's, else the default."""
        from qcheck.limits import Thresholds

        chosen = {}
        for item in fields(Thresholds):
            value = given.get(item.name)
            value = getattr(self, item.name) if value is None else value
            if value is not None:
                chosen[item.name] = value
        return Thresholds(**chosen)

    def tolerances(self) -> Tolerances:
        """How far a baseline comparison lets each figure move: this file's, else the
        defaults."""
        chosen = {name: value for name in ("relative", "absolute", "db", "agreement")
                  if (value := getattr(self, f"tolerance_{name}")) is not None}
        return Tolerances(**chosen)


_FLOATS = {"max_delta_e", "max_delta_e_p95", "max_channel_bias", "min_sqnr_db",
           "min_class_agreement", "max_latency_ms", "max_size_kb",
           "tolerance_relative", "tolerance_absolute", "tolerance_db", "tolerance_agreement"}
_STRINGS = {"calib", "eval", "input_range", "output_range", "output_kind", "custom_objects",
            "input_size", "objective"}
_PATHS = {"calib", "eval", "custom_objects"}  # relative to the file that names them
KNOWN_KEYS = tuple(f.name for f in fields(FileConfig) if f.name != "source")


def find_pyproject(start: Path | None = None) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``start`` (the working directory)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_config(pyproject: Path | None = None, *, warn: bool = True) -> FileConfig:
    path = pyproject if pyproject is not None else find_pyproject()
    if path is None:
        return FileConfig()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise UsageError(f"[tool] in {path} must be a table, got {tool!r}")
    table = tool.get("qcheck")
    if table is None:
        return FileConfig()
    if not isinstance(table, dict):
        raise UsageError(f"[tool.qcheck] in {path} must be a table, got {table!r}")
    return config_from_table(table, path, "[tool.qcheck]", warn=warn)


def config_from_table(table: dict[str, Any], path: Path, section: str, *, warn: bool = True,
                      also_known: tuple[str, ...] = ()) -> FileConfig:
    """The settings of one TOML table (``section`` of ``path``, for messages); relative
    folders are read from ``path``'s folder; keys in ``also_known`` are the caller's."""
    values: dict[str, Any] = {"source": str(path)}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name in also_known:
            continue
        if name not in KNOWN_KEYS:
            if warn:
                print(f"warning: unknown key {key!r} in {section} of {path}; known keys: "
                      f"{', '.join(KNOWN_KEYS + also_known)}", file=sys.stderr)
            continue
        values[name] = _coerce(name, value, path, path.parent, section)
    return FileConfig(**values)


def _coerce(name: str, value: Any, path: Path, base: Path, section: str) -> Any:
    where = f"{section} {name} in {path}"
    if name == "targets":
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise UsageError(f"{where} must be a list of target names")
    if name == "feed":
        return _feed_entries(value, base, where)
    if name in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(f"{where} must be a number, got {value!r}")
        return check_limit(name, value, where)
    if name in _STRINGS:
        if not isinstance(value, str):
            raise UsageError(f"{where} must be a string, got {value!r}")
        if name in _PATHS:
            return str((base / value).resolve()) if not Path(value).is_absolute() else value
        return value
    raise AssertionError(name)


def _feed_entries(value: Any, base: Path, where: str) -> tuple[str, ...]:
    """``feed = {mask = "masks/", strength = 0.5}`` (folders relative to the file) or a list
    of ``"NAME=DIR|VALUE"`` strings."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = dict(entry.partition("=")[::2] for entry in value)
    if not isinstance(value, dict):
        raise UsageError(f"{where} must be a table of input names to folders or numbers")
    entries = []
    for name, given in value.items():
        if isinstance(given, bool) or not isinstance(given, str | int | float):
            raise UsageError(f"{where}: {name} must be a folder or a number, got {given!r}")
        if isinstance(given, str):
            try:
                float(given)
            except ValueError:
                given = str((base / given).resolve()) if not Path(given).is_absolute() \
                    else given
        entries.append(f"{name}={given}")
    return tuple(entries)
