"""How far a set of outputs drifts from the float model's, in the unit its output kind calls
for: the one number attribution ranks layers by and fixes are compared on.

- images: mean CIEDE2000 (``delta_e``; for 1-channel images, of the grey they show);
- class maps: the share of pixels whose class changes (``class_disagreement``);
- classifiers and tensors: RMS error over the RMS of the float output (``relative_error``),
  a continuous stand-in for changed top-1 classes, which a few images cannot resolve.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qcheck.compare.accumulate import ColourAccumulator
from qcheck.compare.pixels import lab_of, thinned, to_unit_rgb
from qcheck.compare.tensor import finite
from qcheck.outputs import OutputKind, OutputSpec

__all__ = ["MEASURED_PIXELS", "Drift", "DriftMeasure", "drift_measure"]

# ΔE is measured on at most this many output pixels (a regular grid): the same colour
# statistics, a fraction of the cost.
MEASURED_PIXELS = 50_000


@dataclass(frozen=True)
class Drift:
    per_image: np.ndarray  # (N,)
    chroma_share: float = 0.0  # images only: the share of the error that is colour

    @property
    def mean(self) -> float:
        return float(np.mean(self.per_image)) if self.per_image.size else 0.0


@dataclass(frozen=True)
class DriftMeasure:
    name: str
    measure: Callable[[np.ndarray, np.ndarray, np.ndarray | None], Drift]
    floor: float  # drift below this is noise: not worth a report line or a closer look
    # What a drift-free reference looks like once, to be reused: CIELAB for images.
    prepare: Callable[[np.ndarray], np.ndarray | None] = lambda reference: None

    def __call__(self, reference: np.ndarray, candidate: np.ndarray,
                 prepared: np.ndarray | None = None) -> Drift:
        with np.errstate(invalid="ignore", over="ignore"):
            return self.measure(reference, candidate, prepared)


def drift_measure(output: OutputSpec) -> DriftMeasure:
    if output.kind is OutputKind.IMAGE:
        def unit(values: np.ndarray) -> np.ndarray:
            return to_unit_rgb(thinned(values, MEASURED_PIXELS), output.range)

        def colour(reference: np.ndarray, candidate: np.ndarray,
                   lab: np.ndarray | None) -> Drift:
            accumulator = ColourAccumulator(ssim=False, artifacts=False, keep_delta_e=False)
            accumulator.add(unit(reference), unit(candidate), lab)
            return Drift(np.asarray(accumulator.image_delta_e), accumulator.chroma_share)

        return DriftMeasure("delta_e", colour, 0.01, lambda reference: lab_of(unit(reference)))
    if output.is_class_map:
        return DriftMeasure("class_disagreement", _class_disagreement, 0.0005)
    return DriftMeasure("relative_error", _relative_error, 0.001)


def _class_disagreement(reference: np.ndarray, candidate: np.ndarray,
                        _: np.ndarray | None) -> Drift:
    changed = np.argmax(reference, axis=-1) != np.argmax(finite(candidate), axis=-1)
    return Drift(changed.reshape(len(changed), -1).mean(axis=1))


def _relative_error(reference: np.ndarray, candidate: np.ndarray,
                    _: np.ndarray | None) -> Drift:
    ref = np.asarray(reference, np.float64).reshape(len(reference), -1)
    error = finite(candidate).reshape(len(candidate), -1) - ref
    scale = max(float(np.sqrt(np.mean(ref**2))), 1e-12)
    return Drift(np.sqrt(np.mean(error**2, axis=1)) / scale)
