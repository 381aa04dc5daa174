"""What a catalogue holds: ``qcheck-zoo.toml``, or a folder of models checked with the defaults.

```toml
[defaults]                      # optional; else [tool.qcheck] of the nearest pyproject.toml
targets = ["tflite-int8", "onnx-int8"]
max_delta_e_p95 = 5.0

[[model]]
path = "models/denoise.keras"   # relative to this file
name = "denoise"                # optional: the row's name (default: the file's stem)
targets = ["tflite-int8"]       # every [tool.qcheck] key may be set per model
input_range = "-1:1"
baseline = "baselines/denoise.json"
```
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import converters
from qcheck.config import FileConfig, config_from_table, load_config
from qcheck.errors import UsageError
from qcheck.validate import resolve_targets

__all__ = ["MANIFEST_NAME", "ZooModel", "load_catalogue"]

MANIFEST_NAME = "qcheck-zoo.toml"
_MODEL_KEYS = ("path", "name", "baseline")
_SUFFIXES = (".keras", ".h5")
_NAME = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ZooModel:
    """One model of the catalogue, with its own settings (defaults filled in)."""

    name: str
    path: str
    settings: FileConfig
    baseline: str | None = None

    @property
    def targets(self) -> tuple[str, ...]:
        return self.settings.targets or converters.DEFAULT_TARGETS


def load_catalogue(source: str | Path) -> list[ZooModel]:
    """The models of a manifest file, or of a folder (its ``qcheck-zoo.toml`` if it has one,
    else every ``.keras``/``.h5`` in it)."""
    where = Path(source)
    if where.is_dir() and (where / MANIFEST_NAME).is_file():
        where = where / MANIFEST_NAME
    if where.is_dir():
        models = sorted(p for p in where.iterdir() if p.suffix in _SUFFIXES)
        if not models:
            raise UsageError(f"{where}: no .keras or .h5 models and no {MANIFEST_NAME}")
        defaults = load_config()
        return _unique([ZooModel(p.stem, str(p.resolve()), defaults) for p in models])
    if not where.is_file():
        raise UsageError(f"{where}: no such manifest or folder")
    return _from_manifest(where)


def _from_manifest(path: Path) -> list[ZooModel]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    table = document.get("defaults")
    defaults = (config_from_table(_table(table, path, "[defaults]"), path, "[defaults]")
                if table is not None else load_config())
    entries = document.get("model")
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{path}: no [[model]] entries")
    models = []
    for number, entry in enumerate(entries, 1):
        section = f"[[model]] #{number}"
        entry = _table(entry, path, section)
        if not isinstance(entry.get("path"), str):
            raise UsageError(f"{section} in {path}: \"path\" (the model file) is required")
        own = config_from_table(entry, path, section, also_known=_MODEL_KEYS)
        model_path = (path.parent / entry["path"]).resolve()
        baseline = entry.get("baseline")
        models.append(ZooModel(
            _row_name(entry.get("name"), model_path, section, path), str(model_path),
            _merged(defaults, own),
            str((path.parent / baseline).resolve()) if isinstance(baseline, str) else None))
    return _unique(models)


def _row_name(name: Any, model_path: Path, section: str, path: Path) -> str:
    """The row's name, which is also its report folder: a plain name, never a path."""
    if name is None:
        return model_path.stem
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
        raise UsageError(f"{section} in {path}: name {name!r} must be letters, digits, '.', "
                         "'_' or '-' (it names the model's report folder)")
    return name


def _table(value: Any, path: Path, section: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{section} in {path} must be a table, got {value!r}")
    return value


def _merged(defaults: FileConfig, own: FileConfig) -> FileConfig:
    chosen = {f.name: getattr(own, f.name) for f in fields(FileConfig)
              if f.name != "source" and getattr(own, f.name) is not None}
    merged = replace(defaults, **chosen)
    if merged.targets is not None:
        resolve_targets(merged.targets)  # an unknown target is the manifest's error, up front
    return merged


def _unique(models: list[ZooModel]) -> list[ZooModel]:
    """Rows are named by model; a repeated name gets its position appended."""
    seen: dict[str, int] = {}
    named = []
    for model in models:
        count = seen.get(model.name, 0)
        seen[model.name] = count + 1
        named.append(replace(model, name=f"{model.name}-{count + 1}") if count else model)
    return named
