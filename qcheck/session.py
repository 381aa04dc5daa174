"""One check's shared state: the model, the images, the work folder and the cache.

Everything expensive is done at most once per check and, through the cache, once per content:
images are read and preprocessed once; the float reference outputs are computed once; each
artifact is converted once (in a worker process) and reused by verification and by later runs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

import converters
from qcheck.cache import Cache
from qcheck.errors import ImageError, ModelLoadError
from qcheck.load import ImageSet, ModelFeed, ModelHandle, bundled_images
from qcheck.load.bundled import BUNDLED_SOURCE
from qcheck.load.images import images_from_arrays, load_folder
from qcheck.quiet import import_tensorflow
from qcheck.runners import KerasRunner
from qcheck.types import Format, ImageSummary, InputRange, ModelInfo, SkippedImage, TargetSpec
from qcheck.workers import QAT_LANE, RUNTIME_LANE, TENSORFLOW_LANE, ConvertJob, WorkerLanes

__all__ = ["ImagesArg", "Outcome", "Session", "resolve_images"]

ONNX_EXPORT = "onnx-fp32"  # the float ONNX every ONNX target starts from

ImagesArg = Any  # a folder path, an array, a sequence of arrays, or None for the bundled half


@dataclass(frozen=True)
class Outcome:
    """What converting (and running) one job produced, fresh or from the cache."""

    job: ConvertJob
    content: bytes | None = None
    outputs_file: Path | None = None
    seconds: float = 0.0
    error: str | None = None
    cached: bool = False

    @property
    def outputs(self) -> np.ndarray | None:
        """The target's outputs, memory-mapped afresh: pages stay resident only while a
        caller holds the array, so a long run keeps at most the target in hand."""
        return None if self.outputs_file is None else np.load(self.outputs_file, mmap_mode="r")


@dataclass
class Session:
    handle: ModelHandle
    calibration: ImageSet
    evaluation: ImageSet
    input_range: InputRange
    summary: ImageSummary
    workdir: Path
    cache: Cache
    lanes: WorkerLanes = field(default=None)  # type: ignore[assignment]
    _references: dict[str, np.ndarray] = field(default_factory=dict)
    _image_files: tuple[Path, Path] | None = None
    _reference_lab: np.ndarray | None = None
    # Targets are compared on threads; the lazily computed references are shared by all.
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _stats_file: Path | None = None
    _produced: dict[str, Path] = field(default_factory=dict)  # artifacts made in this session

    def __post_init__(self) -> None:
        if self.lanes is None:
            self.lanes = WorkerLanes(self.workdir)

    def close(self) -> None:
        self.lanes.close()

    @classmethod
    def open(cls, model: Any, calib: ImagesArg, eval: ImagesArg, input_range: str | InputRange,
             workdir: Path, cache: Cache, lanes: WorkerLanes | None = None,
             prestart: Sequence[str] = ()) -> Session:
        """``prestart`` lanes begin loading TensorFlow at once when the model is new to the
        cache (a cold check), while this process reads the images."""
        value_range = input_range if isinstance(input_range, InputRange) \
            else InputRange.parse(input_range)
        if not isinstance(model, str | os.PathLike):
            import_tensorflow()
        handle = ModelHandle.open(model, workdir, lambda digest: _known_model(cache, digest))
        lanes = lanes or WorkerLanes(workdir)
        if not handle.outputs_known or not cache.enabled:
            lanes.prestart(prestart)
        if handle.outputs_known:
            cache.put_json(_info_key(handle.info.sha256), "model.json", handle.info.to_dict())
        calibration, evaluation, summary = resolve_images(calib, eval, handle.info.input_hw,
                                                          cache)
        return cls(handle, calibration, evaluation, value_range, summary, workdir, cache, lanes)

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
        """Float Keras outputs on the ``calibration`` or ``evaluation`` half, computed once.

        ``reference_job`` lets a worker compute them alongside the conversions; otherwise (or
        when that failed) this process runs the model itself.
        """
        with self._lock:
            return self._reference(half)

    def _reference(self, half: str) -> np.ndarray:
        if half not in self._references:
            self._references[half] = self._load_reference(half)
        if not self.handle.outputs_known:
            self.handle.adopt_outputs(self._references[half])
            self.cache.put_json(_info_key(self.info.sha256), "model.json", self.info.to_dict())
        return self._references[half]

    def _load_reference(self, half: str) -> np.ndarray:
        images = self.calibration if half == "calibration" else self.evaluation
        key = self._reference_key(images)
        path = self.cache.get_file(key, "reference.npy")
        if path is not None:
            outputs = np.load(path, mmap_mode="r")
        else:
            import_tensorflow()
            with KerasRunner(self.handle.model) as runner:
                outputs = runner.infer_all(self.feed(half))
            self.cache.put_array(key, "reference.npy", outputs)
        return outputs

    def _reference_key(self, images: ImageSet) -> str:
        return Cache.key(kind="reference", model=self.info.sha256, images=images.digest(),
                         input_range=str(self.input_range))

    def reference_digest(self) -> str:
        """Identifies both reference halves (what every comparison is made against)."""
        return Cache.key(calibration=self._reference_key(self.calibration),
                         evaluation=self._reference_key(self.evaluation))

    def reference_job(self, stats: bool = False) -> ConvertJob | None:
        """A worker job for the float outputs (and, with ``stats``, the calibrated ranges of
        every layer), unless the cache already has them; it runs in the TensorFlow lane."""
        keys = [self._reference_key(self.calibration), self._reference_key(self.evaluation)]
        if all(self.cache.get_file(k, "reference.npy") for k in keys):
            # Only the ranges missing: the analysis records them itself (it loads the model
            # anyway), rather than a worker loading TensorFlow for them.
            return None
        return ConvertJob(key=f"reference-{keys[1][:16]}", target="reference",
                          model_path=str(self.handle.path.resolve()), signed_io=self.signed_io,
                          lane=TENSORFLOW_LANE, kind="reference", options={"stats": stats})

    def qat_job(self, spec: TargetSpec) -> ConvertJob:
        """Run what quantization-aware training makes of the model for ``spec``: the QAT
        worker fine-tunes (once per model) and converts, the runtime lane runs the artifact."""
        from qcheck.advise.qat import BATCH, LEARNING_RATE, STEPS

        trained = Cache.key(kind="qat", model=self.info.sha256, target=spec.name,
                            calibration=self.calibration.digest(), signed_io=self.signed_io,
                            input_range=str(self.input_range), steps=STEPS, batch=BATCH,
                            learning_rate=LEARNING_RATE)
        base = ConvertJob(key=trained, target=spec.name,
                          model_path=str(self.handle.path.resolve()), signed_io=self.signed_io,
                          lane=QAT_LANE, kind="qat", run=False)
        return ConvertJob(key=Cache.key(kind="qat-run", artifact=trained,
                                        evaluation=self.evaluation.digest()),
                          target=spec.name, model_path=base.model_path,
                          signed_io=self.signed_io, lane=RUNTIME_LANE, base=base)

    def keep_stats(self, write: Callable[[Path], None]) -> None:
        """Cache per-layer calibrated ranges recorded in this process (``write`` saves them)."""
        path = self.workdir / "calibration-stats.npz"
        write(path)
        self._stats_file = path
        self.cache.put_file(self._reference_key(self.calibration), "stats.npz", path)

    def calibration_stats(self) -> Path | None:
        """Per-layer calibrated ranges a worker recorded with the reference, if any."""
        return self.cache.get_file(self._reference_key(self.calibration), "stats.npz") or \
            self._stats_file

    def keep_reference(self, files: tuple[Path, Path] | None) -> None:
        with self._lock:
            self._keep_reference(files)

    def _keep_reference(self, files: tuple[Path, Path] | None) -> None:
        """Adopt a worker's reference outputs (and cache them)."""
        if files is None:
            return
        for half, images, path in (("calibration", self.calibration, files[0]),
                                   ("evaluation", self.evaluation, files[1])):
            self.cache.put_file(self._reference_key(images), "reference.npy", path)
            self._references[half] = np.load(path, mmap_mode="r")
        self.reference("evaluation")  # learns the output shape, which decides image or tensor

    def reference_lab(self) -> np.ndarray:
        with self._lock:
            return self._lab()

    def _lab(self) -> np.ndarray:
        """The evaluation reference in CIELAB, shared by every target's comparison."""
        if self._reference_lab is None:
            from qcheck.compare.metrics import reference_lab

            self._reference_lab = reference_lab(self.reference("evaluation"), self.input_range)
        return self._reference_lab

    def job(self, spec: TargetSpec, *, options: converters.ConversionOptions | None = None,
            model: ModelHandle | None = None, run: bool = True) -> ConvertJob:
        """The job that converts (and with ``run``, runs) ``spec``.

        Work is split so the TensorFlow lane does only what needs TensorFlow: it converts the
        TFLite variants and exports the float ONNX; the runtime lane converts the ONNX variants
        from that export and runs every artifact (LiteRT and ONNX Runtime). A job that runs
        what another job converts names that job as its ``base``.
        """
        handle = model or self.handle
        options = options or converters.ConversionOptions()
        calibrated = spec.precision.needs_calibration
        key = Cache.key(kind="artifact", model=handle.info.sha256, target=spec.name,
                        options=options.to_dict(), signed_io=self.signed_io,
                        input_range=str(self.input_range),
                        calibration=self.calibration.digest() if calibrated else None,
                        evaluation=self.evaluation.digest() if run else None)
        base = None
        lane = RUNTIME_LANE
        if spec.format is Format.TFLITE:
            if run:
                base = self.job(spec, options=options, model=handle, run=False)
            else:
                lane = TENSORFLOW_LANE
        elif spec.name == ONNX_EXPORT and not run:
            lane = TENSORFLOW_LANE
        else:
            base = self.job(converters.TARGETS[ONNX_EXPORT], model=handle, run=False)
        return ConvertJob(key=key, target=spec.name, model_path=str(handle.path.resolve()),
                          signed_io=self.signed_io, lane=lane, options=options.to_dict(),
                          run=run, base=base)

    def run_jobs(self, jobs: Sequence[ConvertJob],
                 on_result: Callable[[Outcome], None] | None = None) -> dict[str, Outcome]:
        """Convert (and run) every job, from the cache where possible, in worker processes.

        ``on_result`` sees each outcome as soon as it exists, so work on it can overlap the
        conversions still running.
        """
        outcomes: dict[str, Outcome] = {}
        pending: list[ConvertJob] = []
        for job in jobs:
            hit = self._cached(job)
            if hit is not None:
                outcomes[job.key] = hit
                if on_result is not None:
                    on_result(hit)
                continue
            base = job.base
            if base is not None:
                exported = self._produced.get(base.key) or self.cache.get_file(base.key,
                                                                               "artifact")
                if exported is not None:
                    job = replace(job, base_artifact=str(exported))
                elif base.key not in {p.key for p in pending}:
                    pending.append(base)
            if job.key not in {p.key for p in pending}:
                pending.append(job)
        # The float ONNX export unblocks the runtime lane, the reference every comparison.
        pending.sort(key=lambda job: 0 if job.target == ONNX_EXPORT and not job.run
                     else 1 if job.kind in ("reference", "qat") else 2)
        if pending:
            self.lanes.images(*self.image_files(), str(self.input_range))
            for result in self.lanes.run_in_background(pending):
                if result.job.kind == "reference":
                    if result.error_kind == "model":
                        raise ModelLoadError(result.error or "the model could not be loaded")
                    files = (result.artifact, result.outputs) if result.error is None and \
                        result.artifact and result.outputs else None
                    if result.extra:
                        self._stats_file = Path(result.extra)
                        self.cache.put_file(self._reference_key(self.calibration), "stats.npz",
                                            self._stats_file)
                    self.keep_reference(files)
                    continue
                outcomes[result.job.key] = self._store(result)
                if result.error is None and result.artifact is not None:
                    self._produced[result.job.key] = result.artifact
                if result.job.key not in {job.key for job in jobs}:
                    continue  # a base nobody asked for by itself
                if on_result is not None:
                    on_result(outcomes[result.job.key])
        return outcomes

    def has_references(self) -> bool:
        return {"calibration", "evaluation"} <= set(self._references)

    def image_files(self) -> tuple[Path, Path]:
        """The preprocessed pixels, written once for the workers to memory-map (this process
        maps them too, from then on)."""
        if self._image_files is None:
            self.calibration = self.calibration.stored_in(self.workdir / "calibration.npy")
            self.evaluation = self.evaluation.stored_in(self.workdir / "evaluation.npy")
            self._image_files = (self.workdir / "calibration.npy",
                                 self.workdir / "evaluation.npy")
        return self._image_files

    def is_cached(self, job: ConvertJob) -> bool:
        """Whether the cache holds everything ``job`` makes (without reading the artifact)."""
        return job.kind != "reference" and \
            self.cache.get_file(job.key, "artifact") is not None and \
            (not job.run or self.cache.get_file(job.key, "outputs.npy") is not None)

    def _cached(self, job: ConvertJob) -> Outcome | None:
        if job.kind == "reference":
            return None
        artifact = self.cache.get_file(job.key, "artifact")
        if artifact is None:
            return None
        outputs = None
        if job.run:
            outputs = self.cache.get_file(job.key, "outputs.npy")
            if outputs is None:
                return None
        return Outcome(job, artifact.read_bytes(), outputs, cached=True)

    def _store(self, result: Any) -> Outcome:
        job = result.job
        if result.error is not None or result.artifact is None:
            return Outcome(job, seconds=result.seconds, error=result.error or "no artifact")
        content = result.artifact.read_bytes()
        self.cache.put_file(job.key, "artifact", result.artifact)
        if result.outputs is not None:
            self.cache.put_file(job.key, "outputs.npy", result.outputs)
        return Outcome(job, content, result.outputs, seconds=result.seconds)


def _info_key(digest: str) -> str:
    return Cache.key(kind="model-info", model=digest)


def _known_model(cache: Cache, digest: str) -> ModelInfo | None:
    data = cache.get_json(_info_key(digest), "model.json")
    return ModelInfo.from_dict(data) if data else None


def resolve_images(calib: ImagesArg, eval: ImagesArg, size: tuple[int | None, int | None],
                   cache: Cache | None = None) -> tuple[ImageSet, ImageSet, ImageSummary]:
    """Calibration and evaluation sets; a side not given falls back to its bundled half."""
    bundled = bundled_images(size) if calib is None or eval is None else None
    calibration = _images(calib, size, "calibration", cache) if calib is not None \
        else bundled[0]  # type: ignore[index]
    evaluation = _images(eval, size, "evaluation", cache) if eval is not None \
        else bundled[1]  # type: ignore[index]
    evaluation = _without_calibration_images(evaluation, calibration)
    if calibration.source == evaluation.source == BUNDLED_SOURCE:
        source = BUNDLED_SOURCE
    else:
        source = f"calibration: {calibration.source}; evaluation: {evaluation.source}"
    skipped = calibration.skipped + tuple(s for s in evaluation.skipped
                                          if s not in calibration.skipped)
    return calibration, evaluation, ImageSummary(len(calibration), len(evaluation), source,
                                                 skipped)


def _images(arg: ImagesArg, size: tuple[int | None, int | None], what: str,
            cache: Cache | None = None) -> ImageSet:
    if isinstance(arg, str | os.PathLike):
        if cache is not None and cache.enabled:
            return _cached_folder(Path(arg), size, what, cache)
        return load_folder(Path(arg), size, what=f"{what} images")
    if isinstance(arg, np.ndarray):
        return images_from_arrays([arg], size, source=f"{what} array")
    return images_from_arrays(list(arg or ()), size, source=f"{what} arrays")


def _cached_folder(folder: Path, size: tuple[int | None, int | None], what: str,
                   cache: Cache) -> ImageSet:
    """Decoded, fitted pixels keyed by the files' contents: a re-run skips decoding."""
    import hashlib

    if not folder.is_dir():
        return load_folder(folder, size, what=f"{what} images")
    digest = hashlib.sha256(repr(size).encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    key = Cache.key(kind="images", content=digest.hexdigest())
    stored = cache.get_json(key, "images.json")
    pixels = cache.get_array(key, "pixels.npy") if stored else None
    if stored is not None and pixels is not None:
        skipped = tuple(SkippedImage(**s) for s in stored["skipped"])
        return ImageSet(tuple(stored["names"]), pixels, str(folder), skipped)
    images = load_folder(folder, size, what=f"{what} images")
    cache.put_array(key, "pixels.npy", images.pixels)
    cache.put_json(key, "images.json", {"names": list(images.names),
                                        "skipped": [s.to_dict() for s in images.skipped]})
    return images


def _without_calibration_images(evaluation: ImageSet, calibration: ImageSet) -> ImageSet:
    """Evaluation images are never calibration images: drop any identical pixel stack."""
    seen = {np.ascontiguousarray(img).tobytes() for img in calibration.pixels}
    keep = [i for i, img in enumerate(evaluation.pixels)
            if np.ascontiguousarray(img).tobytes() not in seen]
    if not keep:
        raise ImageError("every evaluation image is also a calibration image; give disjoint "
                         "--calib and --eval folders")
    return evaluation if len(keep) == len(evaluation) else evaluation.subset(keep)
