"""``qcheck.convert``: one target, one file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import converters
from qcheck.cache import Cache
from qcheck.errors import ConversionError, UsageError
from qcheck.report.files import atomic_write
from qcheck.session import ImagesArg, Session
from qcheck.types import InputRange

__all__ = ["convert"]


def convert(model: Any, target: str, *, calib: ImagesArg = None,
            out: str | os.PathLike[str], input_range: str | InputRange = "0:1",
            cache: bool = True) -> Path:
    """Convert ``model`` for ``target`` and write the artifact to ``out`` (never overwriting)."""
    (spec,) = converters.resolve_targets([target])
    destination = Path(out)
    if destination.exists():
        raise UsageError(f"-o {destination} already exists; qcheck never overwrites a file")
    if destination.suffix and destination.suffix != spec.suffix:
        raise UsageError(f"-o {destination}: {spec.name} writes a {spec.suffix} file")
    with tempfile.TemporaryDirectory(prefix="qcheck-") as workdir:
        session = Session.open(model, calib, None, input_range, Path(workdir), Cache(enabled=cache))
        job = session.job(spec, run=False)
        outcome = session.run_jobs([job])[job.key]
    if outcome.content is None:
        raise ConversionError(outcome.error or f"{spec.name}: conversion failed")
    atomic_write(destination, outcome.content)
    return destination
