"""The check, end to end: load → convert → run → compare → report.

Every target sees the same preprocessed images: one calibration feed drives every converter and
one evaluation feed drives the float model and every runner.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

import converters
from qcheck.compare.metrics import FLOAT16_MAX, compare_outputs, out_of_range_fraction
from qcheck.errors import ImageError, QcheckError
from qcheck.load import (
    ImageSet,
    LoadedModel,
    ModelFeed,
    bundled_images,
    images_from_arrays,
    load_folder,
    load_model,
    model_from_memory,
)
from qcheck.load.bundled import BUNDLED_SOURCE
from qcheck.quiet import import_tensorflow
from qcheck.report.core import ARTIFACTS_DIR, Report
from qcheck.runners import KerasRunner, runner_for
from qcheck.types import (
    ImageSummary,
    InputRange,
    Precision,
    TargetResult,
    TargetSpec,
    Thresholds,
)

if TYPE_CHECKING:
    import keras

__all__ = ["CheckContext", "ImagesArg", "ModelArg", "check", "prepare"]

ModelArg = Union[str, "os.PathLike[str]", "keras.Model"]
ImagesArg = Union[str, "os.PathLike[str]", np.ndarray, Sequence[np.ndarray], None]
ProgressFn = Callable[[str], None]


@dataclass
class CheckContext:
    """Everything shared by the targets of one check, computed once."""

    loaded: LoadedModel
    calibration: ImageSet
    evaluation: ImageSet
    input_range: InputRange
    source: converters.ConversionSource
    summary: ImageSummary
    _references: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def calib_feed(self) -> ModelFeed:
        return ModelFeed(self.calibration, self.input_range)

    @property
    def eval_feed(self) -> ModelFeed:
        return ModelFeed(self.evaluation, self.input_range)

    def calibration_samples(self) -> converters.CalibrationSamples:
        return self.calib_feed.samples

    def reference(self, half: str) -> np.ndarray:
        """Float Keras outputs on the ``calibration`` or ``evaluation`` images, computed once."""
        if half not in self._references:
            feed = self.calib_feed if half == "calibration" else self.eval_feed
            with KerasRunner(self.loaded.model) as runner:
                self._references[half] = runner.infer_all(feed)
        return self._references[half]


def prepare(model: ModelArg, calib: ImagesArg = None, eval: ImagesArg = None,
            input_range: str | InputRange = "0:1") -> CheckContext:
    import_tensorflow()
    loaded = model_from_memory(model) if _is_keras_model(model) else load_model(model)
    value_range = input_range if isinstance(input_range, InputRange) else InputRange.parse(
        input_range)
    calibration, evaluation, summary = resolve_images(calib, eval, loaded.input_hw)
    return CheckContext(
        loaded=loaded,
        calibration=calibration,
        evaluation=evaluation,
        input_range=value_range,
        source=converters.ConversionSource(loaded.model, loaded.input_shape),
        summary=summary,
    )


def check(
    model: ModelArg,
    calib: ImagesArg = None,
    eval: ImagesArg = None,
    targets: Sequence[str] | None = None,
    *,
    input_range: str | InputRange = "0:1",
    thresholds: Thresholds | None = None,
    progress: ProgressFn | None = None,
) -> Report:
    """Convert ``model`` to each target, run it on real images and measure the colour drift."""
    from qcheck import __version__

    specs = converters.resolve_targets(targets or converters.DEFAULT_TARGETS)
    limits = thresholds or Thresholds()
    context = prepare(model, calib, eval, input_range)
    say = progress or (lambda _message: None)
    say(f"float reference on {len(context.evaluation)} evaluation images")
    context.reference("evaluation")
    results: list[TargetResult] = []
    artifacts: dict[str, bytes] = {}
    for spec in specs:
        say(f"{spec.name}: converting and running")
        result, content = run_target(spec, context, limits)
        results.append(result)
        if content is not None:
            artifacts[spec.name] = content
    return Report(
        model=context.loaded.info,
        images=context.summary,
        thresholds=limits,
        targets=tuple(results),
        version=__version__,
        artifacts=artifacts,
    )


def run_target(spec: TargetSpec, context: CheckContext, thresholds: Thresholds
               ) -> tuple[TargetResult, bytes | None]:
    """Convert, run and compare one target; failures become the result's ``error``."""
    started = time.perf_counter()
    calibration = context.calibration_samples() if spec.precision.needs_calibration else None
    try:
        content = converters.convert(spec, context.source, calibration,
                                     signed_io=context.input_range.low < 0)
        with runner_for(spec.format, content) as runner:
            outputs = runner.infer_all(context.eval_feed)
    except QcheckError as exc:
        return TargetResult(spec=spec, passed=False, error=str(exc),
                            seconds=time.perf_counter() - started), None
    loaded = context.loaded
    comparison = compare_outputs(
        context.reference("evaluation"), outputs,
        image_output=loaded.is_image_output, logits=loaded.is_logits_output,
        output_range=context.input_range, clipped_fraction=_clipped_fraction(spec, context),
    )
    failures = tuple(comparison.metrics.failures(thresholds))
    result = TargetResult(
        spec=spec,
        passed=not failures,
        artifact=f"{ARTIFACTS_DIR}/{spec.name}{spec.suffix}",
        size_bytes=len(content),
        seconds=time.perf_counter() - started,
        metrics=comparison.metrics,
        failures=failures,
        artifacts_seen=comparison.artifacts_seen,
    )
    return result, content


def _clipped_fraction(spec: TargetSpec, context: CheckContext) -> float:
    """Share of evaluation outputs beyond what the target can represent.

    Integer targets calibrate their output range on the calibration images (min/max), so an
    evaluation output outside that range is clipped; float16 clips beyond its finite range.
    """
    evaluation = context.reference("evaluation")
    if spec.precision.needs_calibration:
        calibration = context.reference("calibration")
        return out_of_range_fraction(evaluation, float(calibration.min()),
                                     float(calibration.max()))
    if spec.precision is Precision.FP16:
        return out_of_range_fraction(evaluation, -FLOAT16_MAX, FLOAT16_MAX)
    return 0.0


def resolve_images(calib: ImagesArg, eval: ImagesArg, size: tuple[int | None, int | None]
                   ) -> tuple[ImageSet, ImageSet, ImageSummary]:
    """Calibration and evaluation sets; a side not given falls back to its bundled half."""
    bundled: tuple[ImageSet, ImageSet] | None = None
    if calib is None or eval is None:
        bundled = bundled_images(size)
    calibration = _images(calib, size, "calibration") if calib is not None else bundled[0]  # type: ignore[index]
    evaluation = _images(eval, size, "evaluation") if eval is not None else bundled[1]  # type: ignore[index]
    evaluation = _without_calibration_images(evaluation, calibration)
    if calibration.source == evaluation.source == BUNDLED_SOURCE:
        source = BUNDLED_SOURCE
    else:
        source = f"calibration: {calibration.source}; evaluation: {evaluation.source}"
    skipped = calibration.skipped + tuple(s for s in evaluation.skipped
                                          if s not in calibration.skipped)
    summary = ImageSummary(len(calibration), len(evaluation), source, skipped)
    return calibration, evaluation, summary


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


def _is_keras_model(value: Any) -> bool:
    if isinstance(value, str | os.PathLike):
        return False
    import keras

    return isinstance(value, keras.Model)
