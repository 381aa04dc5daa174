"""``qcheck.convert``: one target, one file."""

from __future__ import annotations

import os
from pathlib import Path

import converters
from qcheck.errors import UsageError
from qcheck.pipeline import ImagesArg, ModelArg, prepare
from qcheck.report.files import atomic_write
from qcheck.types import InputRange

__all__ = ["convert"]


def convert(model: ModelArg, target: str, *, calib: ImagesArg = None,
            out: str | os.PathLike[str], input_range: str | InputRange = "0:1") -> Path:
    """Convert ``model`` for ``target`` and write the artifact to ``out`` (never overwriting)."""
    (spec,) = converters.resolve_targets([target])
    destination = Path(out)
    if destination.exists():
        raise UsageError(f"-o {destination} already exists; qcheck never overwrites a file")
    if destination.suffix and destination.suffix != spec.suffix:
        raise UsageError(f"-o {destination}: {spec.name} writes a {spec.suffix} file")
    context = prepare(model, calib, None, input_range)
    calibration = context.calibration_samples() if spec.precision.needs_calibration else None
    content = converters.convert(spec, context.source, calibration,
                                 signed_io=context.input_range.low < 0)
    atomic_write(destination, content)
    return destination
