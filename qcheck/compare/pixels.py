"""Per-pixel colour evidence for one chunk of images: CIELAB and CIEDE2000 (scikit-image).

Outputs are first clipped to the output range and mapped to [0, 1], then read as sRGB (D65).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from skimage import color

from qcheck.types import InputRange

__all__ = ["ColourPixels", "as_rgb", "colour_pixels", "lab_of", "thinned", "to_unit_rgb"]


@dataclass(frozen=True)
class ColourPixels:
    """Both stacks of one chunk, in sRGB [0, 1] and in CIELAB, and the ΔE of every pixel."""

    reference: np.ndarray  # (N, H, W, 3) float32
    candidate: np.ndarray
    lab_reference: np.ndarray
    lab_candidate: np.ndarray
    delta_e: np.ndarray  # (N, H, W) float32

    @functools.cached_property
    def chroma_error(self) -> np.ndarray:
        """Per-pixel chroma difference sqrt(Δa² + Δb²) in CIELAB units (two rules read it)."""
        return np.hypot(self.lab_candidate[..., 1] - self.lab_reference[..., 1],
                        self.lab_candidate[..., 2] - self.lab_reference[..., 2])


def to_unit_rgb(outputs: np.ndarray, output_range: InputRange) -> np.ndarray:
    """Outputs clipped to the output range and mapped to [0, 1]; NaN reads as the range's
    low end and infinities as its ends, so a broken pixel shows as a wrong colour (the verdict
    fails it through ``nonfinite_fraction`` anyway)."""
    with np.errstate(invalid="ignore"):
        unit = (np.asarray(outputs, np.float32) - output_range.low) / output_range.span
    return np.clip(np.nan_to_num(unit, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0
                   ).astype(np.float32)


def lab_of(unit_rgb: np.ndarray) -> np.ndarray:
    """CIELAB in float32: half the cost of float64, and within ~1e-4 ΔE of it."""
    return np.asarray(color.rgb2lab(as_rgb(unit_rgb).astype(np.float32), channel_axis=-1),
                      dtype=np.float32)


def as_rgb(unit: np.ndarray) -> np.ndarray:
    """A 1-channel (lightness) stack as grey RGB; RGB as it is."""
    return np.repeat(unit, 3, axis=-1) if unit.shape[-1] == 1 else unit


def thinned(images: np.ndarray, max_pixels: int) -> np.ndarray:
    """The images on a regular grid of at most ``max_pixels`` pixels in all: the same colour
    statistics at a fraction of the cost."""
    pixels = int(np.prod(images.shape[:3]))
    stride = max(1, int(np.ceil(np.sqrt(pixels / max_pixels))))
    return np.asarray(images[:, ::stride, ::stride])


def colour_pixels(reference: np.ndarray, candidate: np.ndarray,
                  lab_reference: np.ndarray | None = None) -> ColourPixels:
    """``reference`` and ``candidate`` are sRGB stacks in [0, 1]; ``lab_reference`` is the
    reference already in CIELAB, when the caller has it."""
    reference = as_rgb(np.asarray(reference, dtype=np.float32))
    candidate = as_rgb(np.asarray(candidate, dtype=np.float32))
    lab_ref = lab_of(reference) if lab_reference is None else np.asarray(lab_reference,
                                                                         dtype=np.float32)
    lab_cand = lab_of(candidate)
    delta_e = color.deltaE_ciede2000(lab_ref, lab_cand, channel_axis=-1).astype(np.float32)
    return ColourPixels(reference, candidate, lab_ref, lab_cand, delta_e)
