"""What a worker does with each kind of job: a handler per ``JobKind``, looked up in
``HANDLERS``. Workers load this module by name at start-up (``qcheck.workers.supervisor``)."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

import converters
from qcheck.errors import ModelLoadError, QcheckError
from qcheck.jobs import (
    ConvertJob,
    ImageFiles,
    Job,
    JobKind,
    JobResult,
    KernelsJob,
    Lane,
    ProfileJob,
    QatJob,
    ReferenceJob,
)
from qcheck.memory import CycleCollector
from qcheck.runners.io import io_notes
from qcheck.types import Format

__all__ = ["HANDLERS", "WorkerState", "preload"]


# What each lane's jobs import on first use (the TensorFlow lane's need TensorFlow itself,
# which it imports first anyway).
_LANE_MODULES: dict[Lane, tuple[str, ...]] = {
    Lane.RUNTIME: ("qcheck.load.images", "onnx", "onnxruntime.quantization",
                   "onnxconverter_common.float16", "ai_edge_litert.interpreter",
                   "qcheck.runners.onnxrt", "qcheck.runners.litert", "qcheck.readiness.profile",
                   "qcheck.readiness.coverage"),
}


def preload(lane: Lane) -> None:
    """Import what the lane's jobs will import, while it waits for its first job: in a cold
    check the runtime lane waits seconds for the TensorFlow lane's export, with a core to
    spare, and these imports (0.1 s) were paid later while both lanes converted."""
    for name in _LANE_MODULES.get(lane, ()):
        importlib.import_module(name)


class WorkerState:
    """Per-worker memory: one ``ConversionSource`` per model, so each lane exports once, and
    the models quantization-aware training made, trained once."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self._sources: dict[tuple[str, tuple[int, int] | None],
                            converters.ConversionSource] = {}
        self.trained: dict[tuple[str, str, str], Any] = {}
        self._release_memory = CycleCollector()

    def handle(self, job: Job) -> JobResult:
        started = time.perf_counter()
        result = HANDLERS[job.kind](self, job)
        self._release_memory()
        return replace(result, seconds=time.perf_counter() - started)

    def source(self, job: Job) -> converters.ConversionSource:
        path, size = job.model_path, job.input_size
        if (path, size) not in self._sources:
            from qcheck.load import load_model
            from qcheck.load.model import GRAPH_SUFFIX

            if path.endswith(GRAPH_SUFFIX):  # an in-memory model handed over as its graph
                source = converters.ConversionSource.from_graph(Path(path))
            else:
                loaded = load_model(path, job.custom_objects)
                shape = loaded.input_shape
                if size is not None:  # the size the app runs a model of any size at
                    shape = (shape[0], *size, shape[3])
                source = converters.ConversionSource(loaded.model, shape)
            self._sources[(path, size)] = source
        return self._sources[(path, size)]

    def artifact_path(self, job: Job, spec: converters.TargetSpec) -> Path:
        return self.workdir / f"{job.key}{spec.suffix}"


def feed(files: ImageFiles | None, half: str, extra: bool = False,
         rows: tuple[int, ...] = ()) -> Any:
    """The model-ready batches of one image half, memory-mapped from the check's files (only
    ``rows`` of it, when given)."""
    from qcheck.load.images import ImageSet, ModelFeed, extra_file
    from qcheck.types import InputRange

    assert files is not None, "the scheduler gives every job its image files"
    path = files.calibration if half == "calibration" else files.evaluation
    pixels = np.load(path, mmap_mode="r")
    extras = {name: np.load(extra_file(Path(path), name), mmap_mode="r")
              for name in files.extras}
    if rows:
        pixels = pixels[list(rows)]
        extras = {name: values[list(rows)] for name, values in extras.items()}
    if extra:
        from qcheck.load.bundled import bundled_references

        pixels = np.concatenate([pixels, bundled_references(pixels.shape[1:3])])
        # The added photographs take the other inputs' values in turn (a mask or a noise
        # level does not depend on the photograph it is paired with).
        extras = {name: np.resize(np.asarray(values), (len(pixels), *values.shape[1:]))
                  for name, values in extras.items()}
    images = ImageSet(tuple(str(i) for i in range(len(pixels))), pixels, source=str(path),
                      extras=extras, image_input=files.image_input)
    return ModelFeed(images, InputRange.parse(files.input_range), channels=files.channels)


def _convert_and_run(state: WorkerState, job: Job) -> JobResult:
    from qcheck.runners import runner_for

    assert isinstance(job, ConvertJob)
    spec = converters.TARGETS[job.target]
    # A TFLite base (or a QAT job) is the converted artifact itself; an ONNX base is the float
    # export the ONNX variants start from.
    final_base = spec.format is Format.TFLITE or (job.base is not None
                                                  and job.base.kind is JobKind.QAT)
    existing = job.artifact or (job.base_artifact if final_base else None)
    try:
        notes: dict[str, Any] = {}
        if existing is not None:
            artifact = Path(existing)
            content = artifact.read_bytes()
        else:
            content, notes = _convert(state, job, spec)
            artifact = state.artifact_path(job, spec)
            artifact.write_bytes(content)
        if not job.run:
            return JobResult(job, artifact=artifact, notes=notes)
        outputs = state.workdir / f"{job.key}.npy"
        batches = feed(job.images, "evaluation", rows=job.rows)
        runner = runner_for(spec.format, content)
        with runner:
            runner.infer_to_file(batches, len(batches.images), outputs)
        if runner.refused:
            notes["refused"] = runner.refused
        # Read here, where the runtime is loaded, so the check need not load ONNX for them.
        notes.update(io_notes(spec.format, content))
        return JobResult(job, artifact=artifact, outputs=outputs, notes=notes)
    except (QcheckError, converters.ConversionError) as exc:
        return JobResult(job, error=str(exc))


def _convert(state: WorkerState, job: ConvertJob, spec: converters.TargetSpec
             ) -> tuple[bytes, dict[str, Any]]:
    """The artifact, and for a planned recipe its per-layer choices under each tool's names."""
    if job.base_artifact is not None:
        source = converters.ConversionSource.from_onnx(Path(job.base_artifact).read_bytes())
    else:
        source = state.source(job)
    options = converters.ConversionOptions.from_dict(job.options)
    calibration = None
    if spec.precision.needs_calibration:
        calibration = feed(job.images, "calibration", extra=options.extra_calibration).samples
    content = converters.convert(spec, source, calibration, signed_io=job.signed_io,
                                 options=options)
    notes: dict[str, Any] = {}
    if options.planned:
        notes["toolchain"] = converters.toolchain_recipe(spec, source, options)
    return content, notes


def _reference(state: WorkerState, job: Job) -> JobResult:
    """The float outputs of both halves; with ``stats`` the calibration pass also records
    every layer's range (one pass for both)."""
    from qcheck.runners import KerasRunner

    assert isinstance(job, ReferenceJob)
    try:
        source = state.source(job)
    except ModelLoadError as exc:
        return JobResult(job, error=str(exc), model_error=True)
    paths: dict[str, Path] = {}
    # The converters' traced function: traced once for the reference and every export.
    with KerasRunner(source.model, source.function, source.input_names) as runner:
        for half in ("calibration", "evaluation"):
            target = state.workdir / f"{job.key}-{half}.npy"
            batches = feed(job.images, half)
            if half == "calibration" and job.stats and source.model is not None:
                # Only here: the analysis code (and scikit-image's metrics) is 0.02 s of
                # imports on the TensorFlow lane, which a check without analysis never needs.
                from qcheck.analyze.stats import record_stats, save_stats

                outputs, input_stats, stats = record_stats(source.model, batches)
                paths["stats"] = state.workdir / f"{job.key}-stats.npz"
                save_stats(paths["stats"], input_stats, stats)
                np.save(target, outputs)
            else:
                runner.infer_to_file(batches, len(batches.images), target)
            paths[half] = target
    return JobResult(job, artifact=paths["calibration"], outputs=paths["evaluation"],
                     calibration_outputs=paths["calibration"], stats=paths.get("stats"))


def _train_and_convert(state: WorkerState, job: Job) -> JobResult:
    """Train once per model and calibration set (every target of the fix shares it), then
    convert the trained model for ``job.target``."""
    from qcheck.advise.qat import convert_trained, fine_tune
    from qcheck.load import load_model

    assert isinstance(job, QatJob) and job.images is not None
    spec = converters.TARGETS[job.target]
    if job.images.extras:
        return JobResult(job, error=f"{job.target}: quantization-aware training here takes "
                                    "one-input models (this model has several inputs)")
    inputs = np.concatenate(list(feed(job.images, "calibration")))
    trained_key = (job.model_path, job.images.calibration, job.images.input_range)
    try:
        if trained_key not in state.trained:
            model = load_model(job.model_path, job.custom_objects).model
            state.trained[trained_key] = fine_tune(model, inputs)[0]
        content = convert_trained(state.trained[trained_key], spec, inputs, job.signed_io)
    except QcheckError as exc:
        return JobResult(job, error=f"{job.target}: {exc}")
    except Exception as exc:  # tfmot and tf2onnx fail with assorted types
        reason = str(exc).splitlines()[0][:200] if str(exc) else repr(exc)
        return JobResult(job, error=f"{job.target}: quantization-aware training failed: "
                                    f"{reason}")
    artifact = state.artifact_path(job, spec)
    artifact.write_bytes(content)
    return JobResult(job, artifact=artifact)


def _profile(state: WorkerState, job: Job) -> JobResult:
    from qcheck.readiness.coverage import inspect
    from qcheck.readiness.profile import profile_artifact

    assert isinstance(job, ProfileJob) and job.base_artifact is not None
    spec = converters.TARGETS[job.target]
    content = Path(job.base_artifact).read_bytes()
    try:
        figures = profile_artifact(spec.format, content, feed(job.images, "evaluation"))
        issues = inspect(spec.format, content, job.layers, refused=job.refused,
                         quantized=spec.precision.is_integer)
    except QcheckError as exc:
        return JobResult(job, error=str(exc))
    figures["issues"] = [issue.to_dict() for issue in issues]
    return JobResult(job, notes=figures)


def _reference_kernels(state: WorkerState, job: Job) -> JobResult:
    from qcheck.readiness.profile import run_reference_kernels

    assert isinstance(job, KernelsJob) and job.base_artifact is not None
    outputs = state.workdir / f"{job.key}-reference.npy"
    try:
        run_reference_kernels(converters.TARGETS[job.target].format,
                              Path(job.base_artifact).read_bytes(),
                              feed(job.images, "evaluation"), outputs)
    except QcheckError as exc:
        return JobResult(job, error=str(exc))
    return JobResult(job, outputs=outputs)


HANDLERS: dict[JobKind, Callable[[WorkerState, Job], JobResult]] = {
    JobKind.CONVERT: _convert_and_run,
    JobKind.REFERENCE: _reference,
    JobKind.QAT: _train_and_convert,
    JobKind.PROFILE: _profile,
    JobKind.KERNELS: _reference_kernels,
}

