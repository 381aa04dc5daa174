"""One check's shared state: the model, its images, their references, the jobs and the cache.

Everything expensive is done at most once per check and, through the cache, once per content:
images are read and preprocessed once; the float reference outputs are computed once; each
artifact is converted once (in a worker process) and reused by verification and by later runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import converters
from qcheck.cache import Cache
from qcheck.errors import ModelLoadError, UsageError
from qcheck.jobs import ConvertJob, Job, JobKind, JobResult, KernelsJob, Lane, ProfileJob
from qcheck.keys import JobKeys
from qcheck.load.custom import code_digest
from qcheck.load.feeds import attach_feeds, check_feeds
from qcheck.load.image_sets import ImagesArg, ImageSets
from qcheck.load.model import ModelHandle
from qcheck.named import OutputLayout
from qcheck.outputs import OutputSpec, describe_output
from qcheck.quiet import import_tensorflow
from qcheck.references import ReferenceStore
from qcheck.settings import ModelSettings
from qcheck.store import ArtifactStore
from qcheck.types import Format, InputRange, ModelInfo, TargetSpec
from qcheck.workers import WorkerLanes, ahead

__all__ = ["ONNX_EXPORT", "Session"]

ONNX_EXPORT = "onnx-fp32"  # the float ONNX every ONNX target starts from


class OutputViews:
    """A check seen through one output of a model with several: its references, its kind
    and range, and its part of every runner's packed outputs (``qcheck.named``)."""

    handle: ModelHandle
    settings: ModelSettings
    layout: OutputLayout
    output_name: str | None
    references: ReferenceStore
    images: ImageSets

    @property
    def info(self) -> ModelInfo:
        return self.handle.info

    @property
    def input_range(self) -> InputRange:
        return self.images.input_range

    @property
    def output(self) -> OutputSpec:
        """What the output is and how it is read (needs the output shape: the reference); in
        a view of one of several outputs, that output."""
        index = None
        if self.output_name is not None:
            index = self.layout.names.index(self.output_name)
        name = self.output_name or self.info.outputs[0].name
        return describe_output(self.info, self.input_range,
                               kind=self.settings.kind_of(name),
                               value_range=self.settings.output_range, index=index)

    @property
    def output_names(self) -> tuple[str, ...]:
        """The outputs judged one by one: a model's several outputs (empty for one)."""
        return self.layout.names if self.layout.packed else ()

    def for_output(self, name: str) -> Session:
        """This check seen through one of the model's outputs: its references, its kind and
        range, and ``select`` picking it out of packed outputs."""
        if name not in self.layout.names:
            raise UsageError(f"the model has no output {name!r}; its outputs: "
                             f"{', '.join(self.layout.names)}")
        view = self.references.view(lambda array: self.layout.output(array, name), name)
        this: Any = self  # a Session: the views are its copies
        return replace(this, output_name=name, references=view)

    def through(self, name: str | None) -> Session:
        """The view of output ``name``; None (a model with one output): the check itself."""
        return self.for_output(name) if name is not None else self.whole()

    def output_specs(self) -> dict[str, OutputSpec]:
        """How each output is read, by name."""
        if not self.output_names:
            return {self.info.outputs[0].name: self.output}
        return {name: self.for_output(name).output for name in self.output_names}

    def whole(self) -> Session:
        """The check itself, from a view of one output."""
        this: Any = self
        if self.output_name is None:
            return this
        return replace(this, output_name=None,
                       references=getattr(self.references, "store", self.references))

    def select(self, outputs: Any) -> Any:
        """This view's output out of a runner's (packed) outputs."""
        if self.output_name is None or outputs is None:
            return outputs
        return self.layout.output(outputs, self.output_name)


@dataclass
class Session(OutputViews):
    handle: ModelHandle
    images: ImageSets
    keys: JobKeys
    references: ReferenceStore
    store: ArtifactStore
    lanes: WorkerLanes
    cache: Cache
    workdir: Path
    settings: ModelSettings
    layout: OutputLayout
    # A view of one of several outputs (``for_output``); None: the model's only output, or
    # all of them packed.
    output_name: str | None = None

    @classmethod
    def open(cls, model: Any, calib: ImagesArg, eval: ImagesArg,
             settings: str | InputRange | ModelSettings, workdir: Path, cache: Cache,
             lanes: WorkerLanes | None = None, prestart: Sequence[Lane] = ()) -> Session:
        """``settings`` (or just the input range) say how to read the model; ``prestart``
        lanes begin loading TensorFlow at once when the model is new to the cache (a cold
        check), while this process reads the images."""
        settings = ModelSettings.of(settings)
        value_range = settings.input_range
        if not isinstance(model, str | os.PathLike):
            import_tensorflow()
        handle = ModelHandle.open(model, workdir, lambda digest: _known_model(cache, digest),
                                  settings.custom_objects)
        lanes = lanes or WorkerLanes(workdir)
        if not handle.outputs_known or not cache.enabled:
            lanes.prestart(prestart)
        else:  # likely answered from the cache: the workers the command started ahead go now
            ahead.discard()
        if handle.outputs_known:
            cache.put_json(JobKeys.model_info(handle.info.sha256), "model.json",
                           handle.info.cached())
        unknown = [name for name, _ in settings.output_kinds
                   if name not in {t.name for t in handle.info.outputs}]
        if unknown:
            raise UsageError(f"--output-kind {unknown[0]}=…: the model has no output "
                             f"{unknown[0]!r}; its outputs: "
                             f"{', '.join(t.name for t in handle.info.outputs)}")
        size = _input_size(handle.info, settings.input_size)
        check_feeds(handle.info, dict(settings.feeds))  # before any image is read
        images = ImageSets.resolve(calib, eval, size, value_range, cache,
                                   channels=int(handle.info.input_shape[-1] or 3))
        images.calibration, images.evaluation = attach_feeds(
            images.calibration, images.evaluation, handle.info, dict(settings.feeds),
            value_range)
        keys = JobKeys(handle.info.sha256, images.calibration.digest(),
                       images.evaluation.digest(), value_range,
                       code_digest(settings.custom_objects), settings.input_size)
        references = ReferenceStore(handle, images, keys, cache, workdir)
        return cls(handle, images, keys, references, ArtifactStore(cache), lanes, cache,
                   workdir, settings, _layout(handle, images))

    def close(self) -> None:
        self.lanes.close()

    def job(self, spec: TargetSpec, *, options: converters.ConversionOptions | None = None,
            model: ModelHandle | None = None, run: bool = True, rows: tuple[int, ...] = ()
            ) -> ConvertJob:
        """The job that converts (and with ``run``, runs) ``spec``.

        Work is split so the runtime lane never loads TensorFlow: the TensorFlow lane converts
        the TFLite variants, exports the float ONNX and runs the TFLite artifacts it made
        (LiteRT), which the runtime lane takes instead when it is idle (a plan's many TFLite
        candidates); the runtime lane converts the ONNX variants from that export and runs
        them (ONNX Runtime). A job that runs what another job converts names that job as its
        ``base``.
        """
        handle = model or self.handle
        options = options or converters.ConversionOptions()
        rows = rows if run else ()
        key = self.keys.artifact(spec, options.to_dict(), model_sha=handle.info.sha256, run=run,
                                 rows=rows)
        base: ConvertJob | None = None
        lane = Lane.RUNTIME
        spare: Lane | None = None
        if spec.format is Format.TFLITE:
            lane = Lane.TENSORFLOW
            if run:
                base = self.job(spec, options=options, model=handle, run=False)
                spare = Lane.RUNTIME
        elif spec.name == ONNX_EXPORT and not run:
            lane = Lane.TENSORFLOW
        else:
            base = self.job(converters.TARGETS[ONNX_EXPORT], model=handle, run=False)
        return ConvertJob(key=key, target=spec.name, model_path=str(handle.path.resolve()),
                          signed_io=self.keys.signed_io, lane=lane, options=options.to_dict(),
                          run=run, base=base, custom_objects=handle.custom_objects,
                          input_size=self.settings.input_size, rows=rows, spare_lane=spare)

    def profile_job(self, job: ConvertJob, refused: str | None = None) -> ProfileJob:
        """Measure what ``job`` ran on this machine: latency, memory and the ops a phone's
        runtime may treat differently (``refused``: what the default kernels said when they
        would not take the artifact)."""
        layers = self.info.layers
        return _on_artifact(ProfileJob, self.keys.profile(job.key, layers), job,
                            layers=layers, refused=refused)

    def kernels_job(self, job: ConvertJob) -> KernelsJob:
        """Run what ``job`` ran again on the reference kernels (the kernel split's half), in
        the lanes that ran it."""
        return _on_artifact(KernelsJob, self.keys.kernels(job.key), job, lane=job.lane,
                            spare_lane=job.spare_lane)

    def run_jobs(self, jobs: Sequence[Job], on_result: Callable[[JobResult], None] | None = None
                 ) -> dict[str, JobResult]:
        """Convert (and run) every job, from the cache where possible, in worker processes.

        ``on_result`` sees each result as soon as it exists, so work on it can overlap the
        conversions still running.
        """
        report = on_result or (lambda _result: None)
        results: dict[str, JobResult] = {}
        pending: dict[str, Job] = {}
        for job in jobs:
            hit = self.store.cached(job)
            if hit is not None:
                results[job.key] = hit
                report(hit)
                continue
            base = job.base
            if base is not None:
                made = self.store.artifact(base)
                if made is not None:
                    job = replace(job, base_artifact=str(made))
                else:
                    pending.setdefault(base.key, base)
            pending.setdefault(job.key, job)
        if not pending:
            return results
        self.lanes.files = self.images.files(self.workdir)
        asked = {job.key for job in jobs}
        for result in self.lanes.run_in_background(sorted(pending.values(), key=_urgency)):
            if result.job.kind is JobKind.REFERENCE:
                if result.model_error:
                    raise ModelLoadError(result.error or "the model could not be loaded")
                self.references.adopt(result)
                continue
            results[result.job.key] = self.store.keep(result)
            if result.job.key in asked:  # not a base nobody asked for by itself
                report(results[result.job.key])
        return results


_MeasureJob = TypeVar("_MeasureJob", ProfileJob, KernelsJob)


def _on_artifact(kind: type[_MeasureJob], key: str, job: ConvertJob, *,
                 lane: Lane = Lane.RUNTIME, **fields: Any) -> _MeasureJob:
    """A job on what ``job`` made, for the same model (in the runtime lane unless said)."""
    return kind(key=key, target=job.target, model_path=job.model_path, signed_io=job.signed_io,
                lane=lane, base=job, custom_objects=job.custom_objects, **fields)


def _layout(handle: ModelHandle, images: ImageSets) -> OutputLayout:
    """The outputs' names and per-sample shapes; open sizes (a model of any size) are worked
    out by Keras at the size the images are fed at."""
    outputs = handle.info.outputs
    names = tuple(t.name for t in outputs)
    if len(outputs) == 1:
        return OutputLayout(names, (tuple(d or 0 for d in outputs[0].shape[1:]),))
    shapes = [tuple(t.shape[1:]) for t in outputs]
    if any(d is None for shape in shapes for d in shape):
        import_tensorflow()
        height, width = (int(n) for n in images.evaluation.pixels.shape[1:3])
        model = handle.model
        fed = [(1, *[height if i == 0 and d is None else width if i == 1 and d is None else d
                     for i, d in enumerate(t.shape[1:])]) for t in handle.info.inputs]
        try:
            computed = model.compute_output_shape(fed if len(fed) > 1 else fed[0])
            shapes = [tuple(shape[1:]) for shape in computed]
        except Exception as exc:
            raise UsageError(f"cannot work out the sizes of the model's outputs at "
                             f"{height}×{width}: {str(exc).splitlines()[0][:200]}") from None
    return OutputLayout(names, tuple(tuple(int(d or 0) for d in shape) for shape in shapes))


def _input_size(info: ModelInfo, chosen: tuple[int, int] | None
                ) -> tuple[int | None, int | None]:
    """The size the images are fed at: the model's own, or the one chosen for a model of any
    size (choosing another for a fixed-size model is a usage error)."""
    height, width = info.input_hw
    if chosen is None:
        return height, width
    if (height, width) not in ((None, None), chosen):
        raise UsageError(f"--input-size {chosen[0]}x{chosen[1]}: {info.path} runs at its fixed "
                         f"{height}×{width} input size")
    return chosen


def _urgency(job: Job) -> tuple[int, int]:
    """The float ONNX export unblocks the runtime lane, the reference every comparison. Then
    the TensorFlow lane converts the quick TFLite variants before the calibrated one and runs
    each as soon as it is made, so its comparison overlaps the calibration (a MIRNet-style
    model's ``tflite-fp16`` run took 3 s after ``tflite-int8``'s conversion when it went
    second); the runtime lane starts its calibrated conversion first, so it does not end on
    it (Johnson's rule for two stages). Last of all, the runs on the reference kernels:
    untimed, and wanted only at the end, they fill each lane's waits."""
    if job.target == ONNX_EXPORT and not getattr(job, "run", True):
        return 0, 0
    if job.kind in (JobKind.REFERENCE, JobKind.QAT):
        return 1, 0
    if job.kind is JobKind.KERNELS:  # untimed, needed only at the end: the lane's gaps
        return 3, 0
    if job.base is not None and job.base.target == job.target:  # runs what its base made
        return 2, 0
    calibrated = job.target in converters.TARGETS and \
        converters.TARGETS[job.target].precision.needs_calibration
    if job.lane is Lane.TENSORFLOW:
        return 2, 1 if calibrated else 0
    return 2, -2 if calibrated else -1


def _known_model(cache: Cache, digest: str) -> ModelInfo | None:
    def parse(path: Path) -> ModelInfo:
        return ModelInfo.from_dict(json.loads(path.read_text(encoding="utf-8")))

    return cache.read(JobKeys.model_info(digest), "model.json", parse)
