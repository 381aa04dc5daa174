"""One streaming colour accumulator: every colour metric and artifact rule is fed from it.

Chunks of images go in one at a time (so memory stays bounded however many images there are);
the sums each metric and rule needs are kept, and read out at the end. The check's
comparisons, the simulation's ΔE and the worst-image ranking all measure through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from skimage import metrics as skmetrics

from qcheck.compare.artifacts import Stats, add_stats, artifact_stats, decide_artifacts
from qcheck.compare.pixels import ColourPixels, as_rgb, colour_pixels
from qcheck.serialize import PSNR_CAP_DB
from qcheck.types import ArtifactKind

__all__ = ["CHUNK", "ChunkSums", "ColourAccumulator"]

CHUNK = 16  # images compared at a time
_CHANNELS = ("r", "g", "b")


@dataclass(frozen=True)
class ChunkSums:
    """What one chunk adds to a ``ColourAccumulator``'s totals."""

    delta_e: np.ndarray | None  # every pixel's ΔE and |ΔL*|, when the accumulator keeps them
    delta_l: np.ndarray | None
    delta_e_sum: float
    pixels: int
    image_delta_e: list[float]
    error: np.ndarray  # Σ(candidate − reference) per channel, float64
    squares: float
    lightness: float
    chroma: float
    ssim: list[float]
    stats: dict[ArtifactKind, Stats] | None


class ColourAccumulator:
    """Sums over chunks of (reference, candidate) sRGB stacks in [0, 1].

    ``ssim`` and ``artifacts`` can be switched off where only ΔE matters (the simulation);
    ``keep_delta_e`` keeps every pixel's ΔE for percentiles and pictures.
    """

    def __init__(self, *, ssim: bool = True, artifacts: bool = True,
                 keep_delta_e: bool = True) -> None:
        self._ssim, self._artifacts, self._keep = ssim, artifacts, keep_delta_e
        self._delta_e: list[np.ndarray] = []
        self._delta_l: list[np.ndarray] = []  # |ΔL*| per pixel, for lightness outputs
        self._delta_e_sum = 0.0
        self._pixels = 0
        self._error = np.zeros(3)  # Σ(candidate − reference) per channel, float64
        self._squares = 0.0
        self._lightness = 0.0
        self._chroma = 0.0
        self.ssim_per_image: list[float] = []
        self.image_delta_e: list[float] = []
        self.stats: dict[ArtifactKind, Stats] = {}

    def add(self, reference: np.ndarray, candidate: np.ndarray,
            lab_reference: np.ndarray | None = None) -> ColourPixels:
        chunk, sums = self.measure(reference, candidate, lab_reference)
        self.fold(sums)
        return chunk

    def measure(self, reference: np.ndarray, candidate: np.ndarray,
                lab_reference: np.ndarray | None = None) -> tuple[ColourPixels, ChunkSums]:
        """One chunk's evidence and sums, without touching the totals: chunks can be measured
        on several threads and folded in order, which gives the totals one thread would."""
        # Bias and PSNR from the values as given (float64 stays exact); colour in float32.
        chunk = colour_pixels(reference, candidate, lab_reference)
        if np.asarray(candidate).dtype == np.asarray(reference).dtype == np.float32:
            error = chunk.error  # the same values, also read by the tint rule
        else:
            error = as_rgb(np.asarray(candidate, np.float64)) - as_rgb(
                np.asarray(reference, np.float64))
        delta_e = chunk.delta_e
        diff = chunk.lab_candidate - chunk.lab_reference
        return chunk, ChunkSums(
            delta_e=delta_e if self._keep else None,
            delta_l=np.abs(diff[..., 0]) if self._keep else None,
            delta_e_sum=float(np.sum(delta_e, dtype=np.float64)), pixels=delta_e.size,
            image_delta_e=delta_e.reshape(len(delta_e), -1).mean(axis=1).tolist(),
            error=error.sum(axis=(0, 1, 2)), squares=float(np.sum(error**2)),
            lightness=float(np.sum(diff[..., 0] ** 2, dtype=np.float64)),
            chroma=float(np.sum(diff[..., 1:] ** 2, dtype=np.float64)),
            ssim=_ssim_per_image(chunk.reference, chunk.candidate) if self._ssim else [],
            stats=artifact_stats(chunk) if self._artifacts else None)

    def fold(self, sums: ChunkSums) -> None:
        """Add one measured chunk to the totals (chunks in their order)."""
        self._delta_e_sum += sums.delta_e_sum
        self._pixels += sums.pixels
        self.image_delta_e.extend(sums.image_delta_e)
        if sums.delta_e is not None and sums.delta_l is not None:
            self._delta_e.append(sums.delta_e)
            self._delta_l.append(sums.delta_l)
        self._error += sums.error
        self._squares += sums.squares
        self._lightness += sums.lightness
        self._chroma += sums.chroma
        self.ssim_per_image.extend(sums.ssim)
        if sums.stats is not None:
            add_stats(self.stats, sums.stats)

    @property
    def delta_e(self) -> np.ndarray:
        """Every pixel's ΔE, (N, H, W) (only with ``keep_delta_e``)."""
        return np.concatenate(self._delta_e) if self._delta_e else np.zeros((0, 0, 0))

    @property
    def delta_e_mean(self) -> float:
        return self._delta_e_sum / max(self._pixels, 1)

    @property
    def delta_e_p95(self) -> float:
        return float(np.percentile(self.delta_e, 95))

    @property
    def delta_e_max(self) -> float:
        return float(np.max(self.delta_e))

    @property
    def psnr_db(self) -> float:
        """Capped at ``PSNR_CAP_DB`` (where the report caps a perfect match's infinity), so
        the scale stays monotone: a tiny difference never reads higher than no difference."""
        mse = self._squares / max(3 * self._pixels, 1)
        if mse == 0:
            return float("inf")
        return min(PSNR_CAP_DB, 10.0 * float(np.log10(1.0 / mse)))

    @property
    def ssim(self) -> float:
        return float(np.mean(self.ssim_per_image)) if self.ssim_per_image else float("nan")

    @property
    def channel_bias(self) -> dict[str, float]:
        """Mean(candidate − reference) per channel, in 8-bit levels."""
        bias = self._error / max(self._pixels, 1) * 255.0
        return {name: float(value) for name, value in zip(_CHANNELS, bias, strict=True)}

    @property
    def chroma_share(self) -> float:
        total = self._lightness + self._chroma
        return self._chroma / total if total > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """The contract's colour metrics, by their ``Metrics`` field names."""
        return {"delta_e_mean": self.delta_e_mean, "delta_e_p95": self.delta_e_p95,
                "delta_e_max": self.delta_e_max, "psnr_db": self.psnr_db, "ssim": self.ssim,
                "channel_bias": self.channel_bias, "chroma_share": self.chroma_share}

    def lightness_summary(self) -> dict[str, Any]:
        """For 1-channel (lightness) outputs: |ΔL*| instead of ΔE, and no colour."""
        delta_l = np.concatenate(self._delta_l) if self._delta_l else np.zeros(1)
        return {"delta_l_mean": float(np.mean(delta_l, dtype=np.float64)),
                "delta_l_p95": float(np.percentile(delta_l, 95)),
                "delta_l_max": float(np.max(delta_l)), "psnr_db": self.psnr_db,
                "ssim": self.ssim}

    def artifacts(self, clipped_fraction: float = 0.0) -> tuple[ArtifactKind, ...]:
        return decide_artifacts(self.stats, clipped_fraction)


def _ssim_per_image(reference: np.ndarray, candidate: np.ndarray) -> list[float]:
    height, width = reference.shape[1:3]
    window = min(7, height, width)
    window -= 1 - window % 2  # SSIM needs an odd window no larger than the image.
    if window < 3:
        return []
    return [float(skmetrics.structural_similarity(ref, cand, channel_axis=-1, data_range=1.0,
                                                  win_size=window))
            for ref, cand in zip(reference, candidate, strict=True)]
