"""One check's shared state: the model, the images, the work folder and the cache.

Everything expensive is done at most once per check and, through the cache, once per content:
images are read and preprocessed once; the float reference outputs are computed once; each
artifact is converted once (in a worker process) and reused by verification and by later runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import converters
from qcheck.cache import Cache
from qcheck.errors import ImageError
from qcheck.load import ImageSet, ModelFeed, ModelHandle, bundled_images
from qcheck.load.bundled import BUNDLED_SOURCE
from qcheck.load.images import images_from_arrays, load_folder
from qcheck.quiet import import_tensorflow
from qcheck.runners import KerasRunner
from qcheck.types import ImageSummary, InputRange, ModelInfo, TargetSpec
from qcheck.workers import ConvertJob, WorkerLanes

__all__ = ["ImagesArg", "Outcome", "Session", "resolve_images"]

ImagesArg = Any  # a folder path, an array, a sequence of arrays, or None for the bundled half


@dataclass(frozen=True)
class Outcome:
    """What converting (and running) one job produced, fresh or from the cache."""

    job: ConvertJob
    content: bytes | None = None
    outputs: np.ndarray | None = None
    seconds: float = 0.0
    error: str | None = None
    cached: bool = False


@dataclass
class Session:
    handle: ModelHandle
    calibration: ImageSet
    evaluation: ImageSet
    input_range: InputRange
    summary: ImageSummary
    workdir: Path
    cache: Cache
    _references: dict[str, np.ndarray] = field(default_factory=dict)
    _image_files: tuple[Path, Path] | None = None

    @classmethod
    def open(cls, model: Any, calib: ImagesArg, eval: ImagesArg, input_range: str | InputRange,
             workdir: Path, cache: Cache) -> Session:
        value_range = input_range if isinstance(input_range, InputRange) \
            else InputRange.parse(input_range)
        if not isinstance(model, str | os.PathLike):
            import_tensorflow()
        handle = ModelHandle.open(model, workdir, lambda digest: _known_model(cache, digest))
        cache.put_json(_info_key(handle.info.sha256), "model.json", handle.info.to_dict())
        calibration, evaluation, summary = resolve_images(calib, eval, handle.info.input_hw)
        return cls(handle, calibration, evaluation, value_range, summary, workdir, cache)

    @property
    def info(self) -> ModelInfo:
        return self.handle.info

    @property
    def signed_io(self) -> bool:
        return self.input_range.low < 0

    def feed(self, half: str) -> ModelFeed:
        images = self.calibration if half == "calibration" else self.evaluation
        return ModelFeed(images, self.input_range)

    def reference(self, half: str) -> np.ndarray:
        """Float Keras outputs on the ``calibration`` or ``evaluation`` half, computed once."""
        if half in self._references:
            return self._references[half]
        images = self.calibration if half == "calibration" else self.evaluation
        key = Cache.key(kind="reference", model=self.info.sha256, images=images.digest(),
                        input_range=str(self.input_range))
        outputs = self.cache.get_array(key, "reference.npy")
        if outputs is None:
            import_tensorflow()
            with KerasRunner(self.handle.model) as runner:
                outputs = runner.infer_all(self.feed(half))
            self.cache.put_array(key, "reference.npy", outputs)
        self._references[half] = outputs
        return outputs

    def job(self, spec: TargetSpec, *, options: converters.ConversionOptions | None = None,
            model: ModelHandle | None = None, run: bool = True) -> ConvertJob:
        handle = model or self.handle
        options = options or converters.ConversionOptions()
        calibrated = spec.precision.needs_calibration
        key = Cache.key(kind="artifact", model=handle.info.sha256, target=spec.name,
                        options=options.to_dict(), signed_io=self.signed_io,
                        input_range=str(self.input_range),
                        calibration=self.calibration.digest() if calibrated else None,
                        evaluation=self.evaluation.digest() if run else None)
        return ConvertJob(key=key, target=spec.name, model_path=str(handle.path.resolve()),
                          signed_io=self.signed_io, lane=spec.format.value,
                          options=options.to_dict(), run=run)

    def run_jobs(self, jobs: Sequence[ConvertJob]) -> dict[str, Outcome]:
        """Convert (and run) every job, from the cache where possible, in worker processes."""
        outcomes: dict[str, Outcome] = {}
        pending: list[ConvertJob] = []
        for job in jobs:
            hit = self._cached(job)
            if hit is not None:
                outcomes[job.key] = hit
            elif job.key not in {p.key for p in pending}:
                pending.append(job)
        if pending:
            lanes = WorkerLanes(self.workdir, *self.image_files(), str(self.input_range))
            for result in lanes.run(pending):
                outcomes[result.job.key] = self._store(result)
        return outcomes

    def image_files(self) -> tuple[Path, Path]:
        """The preprocessed pixels, written once for the workers to memory-map."""
        if self._image_files is None:
            calib = self.workdir / "calibration.npy"
            evaluation = self.workdir / "evaluation.npy"
            np.save(calib, self.calibration.pixels)
            np.save(evaluation, self.evaluation.pixels)
            self._image_files = (calib, evaluation)
        return self._image_files

    def _cached(self, job: ConvertJob) -> Outcome | None:
        artifact = self.cache.get_file(job.key, "artifact")
        if artifact is None:
            return None
        outputs = None
        if job.run:
            outputs = self.cache.get_array(job.key, "outputs.npy")
            if outputs is None:
                return None
        return Outcome(job, artifact.read_bytes(), outputs, cached=True)

    def _store(self, result: Any) -> Outcome:
        job = result.job
        if result.error is not None or result.artifact is None:
            return Outcome(job, seconds=result.seconds, error=result.error or "no artifact")
        content = result.artifact.read_bytes()
        outputs = np.load(result.outputs) if result.outputs is not None else None
        self.cache.put_file(job.key, "artifact", result.artifact)
        if result.outputs is not None:
            self.cache.put_file(job.key, "outputs.npy", result.outputs)
        return Outcome(job, content, outputs, seconds=result.seconds)


def _info_key(digest: str) -> str:
    return Cache.key(kind="model-info", model=digest)


def _known_model(cache: Cache, digest: str) -> ModelInfo | None:
    data = cache.get_json(_info_key(digest), "model.json")
    return ModelInfo.from_dict(data) if data else None


def resolve_images(calib: ImagesArg, eval: ImagesArg, size: tuple[int | None, int | None]
                   ) -> tuple[ImageSet, ImageSet, ImageSummary]:
    """Calibration and evaluation sets; a side not given falls back to its bundled half."""
    bundled = bundled_images(size) if calib is None or eval is None else None
    calibration = _images(calib, size, "calibration") if calib is not None else bundled[0]  # type: ignore[index]
    evaluation = _images(eval, size, "evaluation") if eval is not None else bundled[1]  # type: ignore[index]
    evaluation = _without_calibration_images(evaluation, calibration)
    if calibration.source == evaluation.source == BUNDLED_SOURCE:
        source = BUNDLED_SOURCE
    else:
        source = f"calibration: {calibration.source}; evaluation: {evaluation.source}"
    skipped = calibration.skipped + tuple(s for s in evaluation.skipped
                                          if s not in calibration.skipped)
    return calibration, evaluation, ImageSummary(len(calibration), len(evaluation), source,
                                                 skipped)


def _images(arg: ImagesArg, size: tuple[int | None, int | None], what: str) -> ImageSet:
    if isinstance(arg, str | os.PathLike):
        return load_folder(Path(arg), size, what=f"{what} images")
    if isinstance(arg, np.ndarray):
        return images_from_arrays([arg], size, source=f"{what} array")
    return images_from_arrays(list(arg or ()), size, source=f"{what} arrays")


def _without_calibration_images(evaluation: ImageSet, calibration: ImageSet) -> ImageSet:
    """Evaluation images are never calibration images: drop any identical pixel stack."""
    seen = {np.ascontiguousarray(img).tobytes() for img in calibration.pixels}
    keep = [i for i, img in enumerate(evaluation.pixels)
            if np.ascontiguousarray(img).tobytes() not in seen]
    if not keep:
        raise ImageError("every evaluation image is also a calibration image; give disjoint "
                         "--calib and --eval folders")
    return evaluation if len(keep) == len(evaluation) else evaluation.subset(keep)
