"""What the HTML page shows of a target, taken from the comparison while it is in memory."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qcheck.compare.color import ColourComparison

__all__ = ["HISTOGRAM_EDGES", "TargetVisuals", "capture"]

HISTOGRAM_EDGES = np.concatenate([np.arange(0.0, 10.0, 0.25), [np.inf]])
WORST_IMAGES = 3


@dataclass(frozen=True)
class TargetVisuals:
    names: tuple[str, ...]  # the worst evaluation images, worst first
    reference: np.ndarray  # (k, H, W, 3) float model output, sRGB [0, 1]
    candidate: np.ndarray  # (k, H, W, 3) the target's output
    delta_e: np.ndarray  # (k, H, W)
    image_delta_e: tuple[float, ...]
    histogram: np.ndarray  # pixel counts per HISTOGRAM_EDGES bin


def capture(comparison: ColourComparison, names: tuple[str, ...]) -> TargetVisuals:
    per_image = comparison.delta_e.reshape(len(comparison.delta_e), -1).mean(axis=1)
    worst = np.argsort(per_image)[::-1][:WORST_IMAGES]
    histogram, _ = np.histogram(comparison.delta_e, bins=HISTOGRAM_EDGES)
    return TargetVisuals(
        names=tuple(names[i] for i in worst),
        reference=comparison.reference[worst].astype(np.float32),
        candidate=comparison.candidate[worst].astype(np.float32),
        delta_e=comparison.delta_e[worst].astype(np.float32),
        image_delta_e=tuple(float(per_image[i]) for i in worst),
        histogram=histogram,
    )
