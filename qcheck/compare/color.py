"""Colour metrics between the float model's output and a target's, all from scikit-image.

Outputs are first clipped to the output range and mapped to [0, 1], then read as sRGB (D65) and
compared in CIELAB with CIEDE2000, per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage import color, metrics

from qcheck.types import InputRange

__all__ = ["ColourComparison", "compare_colour", "to_unit_rgb"]

_CHANNELS = ("r", "g", "b")


@dataclass(frozen=True)
class ColourComparison:
    """Per-pixel evidence and the summary numbers of one comparison."""

    reference: np.ndarray  # (N, H, W, 3) sRGB in [0, 1]
    candidate: np.ndarray
    lab_reference: np.ndarray
    lab_candidate: np.ndarray
    delta_e: np.ndarray  # (N, H, W)
    delta_e_mean: float
    delta_e_p95: float
    delta_e_max: float
    psnr_db: float
    ssim: float
    channel_bias: dict[str, float]
    chroma_share: float
    ssim_per_image: tuple[float, ...] = ()

    @property
    def chroma_error(self) -> np.ndarray:
        """Per-pixel chroma difference sqrt(Δa² + Δb²) in CIELAB units."""
        diff = self.lab_candidate[..., 1:] - self.lab_reference[..., 1:]
        return np.sqrt(np.sum(diff**2, axis=-1))


def to_unit_rgb(outputs: np.ndarray, output_range: InputRange) -> np.ndarray:
    return np.clip((outputs - output_range.low) / output_range.span, 0.0, 1.0).astype(np.float32)


def compare_colour(reference: np.ndarray, candidate: np.ndarray,
                   lab_reference: np.ndarray | None = None) -> ColourComparison:
    """Compare two stacks of sRGB images in [0, 1], shaped (N, H, W, 3).

    ``lab_reference`` is ``reference`` already in CIELAB, when the caller has it.
    """
    # Bias and PSNR in float64 stay exact; float32 halves the cost of CIELAB and CIEDE2000,
    # which agree with float64 to ~1e-4 ΔE.
    error = np.asarray(candidate, np.float64) - np.asarray(reference, np.float64)
    bias = np.mean(error, axis=(0, 1, 2)) * 255.0
    mse = float(np.mean(error**2))
    reference = reference.astype(np.float32)
    candidate = candidate.astype(np.float32)
    lab_ref = lab_reference if lab_reference is not None else color.rgb2lab(reference,
                                                                           channel_axis=-1)
    lab_cand = color.rgb2lab(candidate, channel_axis=-1)
    delta_e = color.deltaE_ciede2000(lab_ref, lab_cand, channel_axis=-1)

    diff_lab = lab_cand - lab_ref
    lightness_energy = float(np.sum(diff_lab[..., 0] ** 2))
    chroma_energy = float(np.sum(diff_lab[..., 1:] ** 2))
    total = lightness_energy + chroma_energy
    ssim = _ssim_per_image(reference, candidate)

    return ColourComparison(
        reference=reference,
        candidate=candidate,
        lab_reference=lab_ref,
        lab_candidate=lab_cand,
        delta_e=delta_e,
        delta_e_mean=float(np.mean(delta_e)),
        delta_e_p95=float(np.percentile(delta_e, 95)),
        delta_e_max=float(np.max(delta_e)),
        psnr_db=float("inf") if mse == 0 else 10.0 * float(np.log10(1.0 / mse)),
        ssim=float(np.mean(ssim)) if ssim else float("nan"),
        channel_bias={name: float(value) for name, value in zip(_CHANNELS, bias, strict=True)},
        chroma_share=chroma_energy / total if total > 0 else 0.0,
        ssim_per_image=ssim,
    )


def _ssim_per_image(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, ...]:
    height, width = reference.shape[1:3]
    window = min(7, height, width)
    window -= 1 - window % 2  # SSIM needs an odd window no larger than the image.
    if window < 3:
        return ()
    return tuple(
        float(metrics.structural_similarity(ref, cand, channel_axis=-1, data_range=1.0,
                                            win_size=window))
        for ref, cand in zip(reference, candidate, strict=True))
