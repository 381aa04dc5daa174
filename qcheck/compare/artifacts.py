"""Name the kinds of colour damage a person would see, each by one documented rule.

Every rule compares the target's output with the float model's on the evaluation images:

- **tint**: a systematic per-channel shift. Some channel's mean error is at least
  ``TINT_MIN_LEVELS`` 8-bit levels and at least ``TINT_MIN_SYSTEMATIC`` of that channel's RMS
  error (a shift, not noise).
- **fringing**: chroma error concentrated on edges. On the float output's strongest edges (top
  ``EDGE_QUANTILE`` of lightness gradient, and a real edge) the mean chroma error is at least
  ``FRINGE_MIN_CHROMA`` and at least ``FRINGE_EDGE_RATIO`` times the mean elsewhere.
- **speckle**: isolated high-frequency chroma error. Pixels whose chroma error exceeds
  ``SPECKLE_MIN_CHROMA`` while their 3×3 neighbourhood median stays below ``SPECKLE_MAX_MEDIAN``
  are at least ``SPECKLE_MIN_FRACTION`` of all pixels and most of the strongly wrong ones.
- **banding**: smooth float gradients turned into steps. In gently varying regions of the float
  output (8-bit steps of at most 2 levels), at least ``BANDING_MIN_FLAT`` of the float's changes
  become flat in the target, at least ``BANDING_MIN_JUMPS`` of positions jump by 2+ levels, and
  total variation stays within ``BANDING_MAX_TV_RATIO`` (steps, not noise).
- **clipping**: values pushed to the ends of the range. At least ``CLIP_MIN_FRACTION`` of
  pixel-channels saturate in the target but not in the float output, or at least
  ``CLIP_MIN_OUT_OF_RANGE`` of values fall outside the calibrated range.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from qcheck.compare.color import ColourComparison
from qcheck.types import ArtifactKind

__all__ = ["detect_artifacts", "has_banding", "has_clipping", "has_fringing", "has_speckle",
           "has_tint"]

TINT_MIN_LEVELS = 1.5
TINT_MIN_SYSTEMATIC = 0.5
EDGE_QUANTILE = 0.9
EDGE_MIN_GRADIENT = 5.0  # CIELAB L units per pixel (Sobel-normalized)
FRINGE_MIN_CHROMA = 2.0
FRINGE_EDGE_RATIO = 3.0
SPECKLE_MIN_CHROMA = 4.0
SPECKLE_MAX_MEDIAN = 1.0
SPECKLE_MIN_FRACTION = 0.001
BANDING_MIN_REGION = 0.005
BANDING_MIN_FLAT = 0.4
BANDING_MIN_JUMPS = 0.03
BANDING_MAX_TV_RATIO = 1.5
CLIP_MIN_FRACTION = 0.002
CLIP_MIN_OUT_OF_RANGE = 0.01


def detect_artifacts(comparison: ColourComparison, clipped_fraction: float = 0.0
                     ) -> tuple[ArtifactKind, ...]:
    checks = (
        (ArtifactKind.TINT, has_tint(comparison)),
        (ArtifactKind.FRINGING, has_fringing(comparison)),
        (ArtifactKind.SPECKLE, has_speckle(comparison)),
        (ArtifactKind.BANDING, has_banding(comparison)),
        (ArtifactKind.CLIPPING, has_clipping(comparison, clipped_fraction)),
    )
    return tuple(kind for kind, seen in checks if seen)


def has_tint(c: ColourComparison) -> bool:
    error = (c.candidate - c.reference) * 255.0
    bias = np.abs(np.mean(error, axis=(0, 1, 2)))
    rms = np.sqrt(np.mean(error**2, axis=(0, 1, 2)))
    systematic = bias >= TINT_MIN_SYSTEMATIC * np.maximum(rms, 1e-12)
    return bool(np.any((bias >= TINT_MIN_LEVELS) & systematic))


def has_fringing(c: ColourComparison) -> bool:
    lightness = c.lab_reference[..., 0]
    gradient = np.hypot(ndimage.sobel(lightness, axis=1), ndimage.sobel(lightness, axis=2)) / 8.0
    threshold = max(float(np.quantile(gradient, EDGE_QUANTILE)), EDGE_MIN_GRADIENT)
    edges = gradient >= threshold
    if not edges.any() or edges.all():
        return False
    chroma = c.chroma_error
    on_edges = float(np.mean(chroma[edges]))
    elsewhere = float(np.mean(chroma[~edges]))
    return on_edges >= FRINGE_MIN_CHROMA and on_edges >= FRINGE_EDGE_RATIO * max(elsewhere, 1e-6)


def has_speckle(c: ColourComparison) -> bool:
    chroma = c.chroma_error
    strong = chroma > SPECKLE_MIN_CHROMA
    if not strong.any():
        return False
    local = ndimage.median_filter(chroma, size=(1, 3, 3), mode="nearest")
    isolated = strong & (local < SPECKLE_MAX_MEDIAN)
    return bool(isolated.mean() >= SPECKLE_MIN_FRACTION and isolated.sum() >= 0.5 * strong.sum())


def has_banding(c: ColourComparison) -> bool:
    ref = np.round(c.reference * 255.0)
    cand = np.round(c.candidate * 255.0)
    region = flats = changes = jumps = 0
    tv_ref = tv_cand = 0.0
    for axis in (1, 2):
        d_ref = np.abs(np.diff(ref, axis=axis))
        d_cand = np.abs(np.diff(cand, axis=axis))
        # Gently varying: small steps, but the neighbourhood does change.
        activity = ndimage.uniform_filter1d(d_ref, size=9, axis=axis)
        smooth = (d_ref <= 2) & (activity >= 0.3)
        region += int(smooth.sum())
        changing = smooth & (d_ref > 0)
        changes += int(changing.sum())
        flats += int((changing & (d_cand == 0)).sum())
        jumps += int((smooth & (d_cand >= 2) & (d_cand > d_ref)).sum())
        tv_ref += float(d_ref[smooth].sum())
        tv_cand += float(d_cand[smooth].sum())
    total = 2 * ref.size
    if region < BANDING_MIN_REGION * total or changes == 0 or tv_ref == 0:
        return False
    return (flats / changes >= BANDING_MIN_FLAT and jumps / region >= BANDING_MIN_JUMPS
            and tv_cand / tv_ref <= BANDING_MAX_TV_RATIO)


def has_clipping(c: ColourComparison, clipped_fraction: float = 0.0) -> bool:
    ref = np.round(c.reference * 255.0)
    cand = np.round(c.candidate * 255.0)
    newly_low = (cand <= 0) & (ref > 2)
    newly_high = (cand >= 255) & (ref < 253)
    newly = float(np.mean(newly_low | newly_high))
    return newly >= CLIP_MIN_FRACTION or clipped_fraction >= CLIP_MIN_OUT_OF_RANGE
