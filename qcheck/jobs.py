"""The worker protocol: one job type per kind of work, the lanes that run them, one result type.

A job is a frozen description of work a worker process does; it crosses the process boundary
by pickling, and comes back inside the ``JobResult`` the worker made of it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

__all__ = ["ConvertJob", "ImageFiles", "Job", "JobKind", "JobResult", "KernelsJob", "Lane",
           "ProfileJob", "QatJob", "ReferenceJob"]


class Lane(StrEnum):
    """Worker processes, by what they need loaded."""

    # TensorFlow's converter, the float ONNX export and the Keras reference need TensorFlow.
    TENSORFLOW = "tensorflow"
    # ONNX Runtime's quantizer and every interpreter (LiteRT, ONNX Runtime) do not.
    RUNTIME = "runtime"
    # Quantization-aware training needs tf-keras (Keras 2) for tensorflow-model-optimization,
    # which TensorFlow only gives a process that sets TF_USE_LEGACY_KERAS before loading it.
    QAT = "qat"


class JobKind(StrEnum):
    CONVERT = "convert"
    REFERENCE = "reference"
    QAT = "qat"
    PROFILE = "profile"
    KERNELS = "kernels"


@dataclass(frozen=True)
class ImageFiles:
    """The preprocessed pixels, as ``.npy`` files every worker memory-maps."""

    calibration: str
    evaluation: str
    input_range: str
    channels: int = 3  # the model's input channels: 1 feeds lightness
    # A model with several inputs: the input the images feed and the others' names, whose
    # values are stored beside each half's file (``qcheck.load.images.extra_file``).
    image_input: str = "image"
    extras: tuple[str, ...] = ()


@dataclass(frozen=True)
class Job:
    """Work for one worker; ``key`` is unique per job and names the files the worker writes."""

    kind: ClassVar[JobKind]

    key: str
    target: str
    model_path: str
    signed_io: bool
    lane: Lane
    # A job whose artifact this one starts from (the float ONNX export, made in the
    # TensorFlow lane so the ONNX Runtime lane never loads TensorFlow); ``base_artifact`` is
    # its file, filled in from the cache or when that job finishes.
    base: Job | None = None
    base_artifact: str | None = None
    images: ImageFiles | None = None  # filled in by the scheduler when the job is dispatched
    custom_objects: str | None = None  # the user's own code, when they opted in to it
    # (height, width) to convert a model with no fixed input size at (None: as it is).
    input_size: tuple[int, int] | None = None
    # A lane that may take this job when its worker is idle with nothing of its own ready (a
    # TFLite artifact runs in either worker: LiteRT loads in both).
    spare_lane: Lane | None = None


@dataclass(frozen=True)
class ConvertJob(Job):
    """Convert ``target`` from the model (or the base's artifact) and, with ``run``, run it on
    the evaluation images."""

    kind: ClassVar[JobKind] = JobKind.CONVERT

    options: dict[str, object] = field(default_factory=dict)
    run: bool = True
    artifact: str | None = None  # run this existing artifact instead of converting
    rows: tuple[int, ...] = ()  # run these evaluation images only (empty: every one)


@dataclass(frozen=True)
class ReferenceJob(Job):
    """The float Keras outputs on both image halves (and, with ``stats``, every layer's
    calibrated range)."""

    kind: ClassVar[JobKind] = JobKind.REFERENCE

    stats: bool = False


@dataclass(frozen=True)
class QatJob(Job):
    """Fine-tune the model with quantization-aware training and convert it for ``target``."""

    kind: ClassVar[JobKind] = JobKind.QAT


@dataclass(frozen=True)
class ProfileJob(Job):
    """Measure the base's artifact on this machine: latency and memory (timed, so it runs
    once nothing else does), and which of its ops a phone's runtime may treat differently
    (``qcheck.readiness``)."""

    kind: ClassVar[JobKind] = JobKind.PROFILE

    layers: tuple[str, ...] = ()  # the model's layer paths, to name ops by
    refused: str | None = None  # what the default kernels said when they refused the artifact


@dataclass(frozen=True)
class KernelsJob(Job):
    """Run the base's artifact on the runtime's reference kernels, on the first evaluation
    images. Untimed: it goes with the conversions, into the runtime lane's gaps."""

    kind: ClassVar[JobKind] = JobKind.KERNELS


@dataclass(frozen=True)
class JobResult:
    """What one job produced, fresh from a worker or from the cache."""

    job: Job
    artifact: Path | None = None
    outputs: Path | None = None  # evaluation outputs (.npy)
    calibration_outputs: Path | None = None  # a reference job's calibration half
    stats: Path | None = None  # a reference job's per-layer calibrated ranges (.npz)
    seconds: float = 0.0
    error: str | None = None
    model_error: bool = False  # the model itself could not be loaded
    tensorflow_loaded: bool = False  # whether the worker that ran it had loaded TensorFlow
    cached: bool = False
    # Small findings that travel with the artifact: the GPU analyzer's report, a runtime's
    # refusal, a profile's figures (JSON-able).
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        if self.job.kind is JobKind.PROFILE:  # figures only
            return self.error is None and bool(self.notes)
        made = self.outputs if self.job.kind is JobKind.KERNELS else self.artifact
        return self.error is None and made is not None

    @functools.cached_property
    def content(self) -> bytes | None:
        """The artifact's bytes, read once."""
        return None if self.artifact is None or self.error else self.artifact.read_bytes()

    def output_array(self) -> np.ndarray | None:
        """The outputs, memory-mapped afresh: pages stay resident only while a caller holds
        the array, so a long run keeps at most the target in hand."""
        return None if self.outputs is None else np.load(self.outputs, mmap_mode="r")
