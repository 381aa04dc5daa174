"""Converted artifacts and their outputs: from the cache, or as the workers made them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from qcheck.cache import Cache
from qcheck.jobs import Job, JobKind, JobResult

__all__ = ["ArtifactStore"]


class ArtifactStore:
    """What this check's jobs produced, backed by the cache."""

    def __init__(self, cache: Cache):
        self.cache = cache
        self._produced: dict[str, Path] = {}  # artifacts made in this check, by job key

    def artifact(self, job: Job) -> Path | None:
        """The artifact ``job`` makes, if it exists already."""
        return self._produced.get(job.key) or self.cache.get_file(job.key, "artifact")

    def is_cached(self, job: Job) -> bool:
        """Whether the cache holds everything ``job`` makes (without reading the artifact)."""
        return self._entry(job) is not None

    def cached(self, job: Job) -> JobResult | None:
        entry = self._entry(job)
        return None if entry is None else _loaded(entry)

    def _entry(self, job: Job) -> JobResult | None:
        if job.kind is JobKind.REFERENCE:
            return None
        if job.kind is JobKind.PROFILE:  # its figures, not an artifact
            notes = self.cache.get_json(job.key, "notes.json")
            return None if notes is None else JobResult(job, cached=True, notes=notes)
        if job.kind is JobKind.KERNELS:  # the reference kernels' outputs
            outputs = self.cache.read(job.key, "outputs.npy", _readable_array)
            return None if outputs is None else JobResult(job, outputs=outputs, cached=True)
        artifact = self.cache.get_file(job.key, "artifact")
        runs = getattr(job, "run", False)
        # Both files are checked (and a damaged one named) before either is trusted.
        outputs = self.cache.read(job.key, "outputs.npy", _readable_array) if runs else None
        if artifact is None or (runs and outputs is None):
            return None
        notes = self.cache.get_json(job.key, "notes.json") or {}
        return JobResult(job, artifact=artifact, outputs=outputs, cached=True, notes=notes)

    def keep(self, result: JobResult) -> JobResult:
        """Cache a worker's result; the result then reads what it made from the work folder."""
        if not result.ok:
            return replace(result, error=result.error or "no artifact", artifact=None,
                           outputs=None)
        if result.artifact is not None:  # a profile or a reference-kernel run makes none
            self._produced[result.job.key] = result.artifact
            self.cache.put_file(result.job.key, "artifact", result.artifact)
        if result.outputs is not None:
            self.cache.put_file(result.job.key, "outputs.npy", result.outputs)
        if result.notes:
            self.cache.put_json(result.job.key, "notes.json", result.notes)
        return _loaded(result)


def _readable_array(path: Path) -> Path:
    np.load(path, mmap_mode="r", allow_pickle=False)  # raises on a file that is no array
    return path


def _loaded(result: JobResult) -> JobResult:
    """The artifact is read now: the work folder it may sit in is gone after the check."""
    _ = result.content
    return result
