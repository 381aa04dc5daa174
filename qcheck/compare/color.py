"""Colour metrics of one stack of images against another, summarised.

A thin front of ``ColourAccumulator`` for callers that hold every image at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qcheck.compare.accumulate import ColourAccumulator
from qcheck.compare.pixels import ColourPixels, to_unit_rgb

__all__ = ["ColourComparison", "compare_colour", "to_unit_rgb"]


@dataclass(frozen=True)
class ColourComparison(ColourPixels):
    """Per-pixel evidence and the summary numbers of one comparison."""

    delta_e_mean: float = 0.0
    delta_e_p95: float = 0.0
    delta_e_max: float = 0.0
    psnr_db: float = 0.0
    ssim: float = 0.0
    channel_bias: dict[str, float] | None = None
    chroma_share: float = 0.0
    ssim_per_image: tuple[float, ...] = ()


def compare_colour(reference: np.ndarray, candidate: np.ndarray,
                   lab_reference: np.ndarray | None = None) -> ColourComparison:
    """Compare two stacks of sRGB images in [0, 1], shaped (N, H, W, 3)."""
    accumulator = ColourAccumulator(artifacts=False)
    pixels = accumulator.add(reference, candidate, lab_reference)
    return ColourComparison(
        pixels.reference, pixels.candidate, pixels.lab_reference, pixels.lab_candidate,
        pixels.delta_e, **accumulator.summary(),
        ssim_per_image=tuple(accumulator.ssim_per_image),
    )
