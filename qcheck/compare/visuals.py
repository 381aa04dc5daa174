"""What the HTML page shows of a target, taken from the comparison while it is in memory."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qcheck.compare.pixels import as_rgb, to_unit_rgb
from qcheck.types import InputRange

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

    def save(self, path: Path) -> None:
        # Uncompressed: zlib takes 0.2 s of processor time per target at 3 × 224² and saves
        # only a third of float pixels' bytes.
        np.savez(path, reference=self.reference, candidate=self.candidate,
                 delta_e=self.delta_e, histogram=self.histogram)

    @classmethod
    def load(cls, path: Path, names: tuple[str, ...], image_delta_e: tuple[float, ...]
             ) -> TargetVisuals:
        with np.load(path, allow_pickle=False) as data:
            return cls(names, data["reference"], data["candidate"], data["delta_e"],
                       image_delta_e, data["histogram"])

    def digest(self) -> str:
        digest = hashlib.sha256()
        for array in (self.reference, self.candidate, self.delta_e, self.histogram):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def capture(delta_e: np.ndarray, reference: np.ndarray, candidate: np.ndarray,
            names: tuple[str, ...], output_range: InputRange) -> TargetVisuals:
    """The worst images (float, target, ΔE map) and the ΔE histogram of one target."""
    per_image = delta_e.reshape(len(delta_e), -1).mean(axis=1)
    worst = sorted(np.argsort(per_image)[::-1][:WORST_IMAGES], key=lambda i: -per_image[i])
    histogram, _ = np.histogram(delta_e, bins=HISTOGRAM_EDGES)
    return TargetVisuals(
        names=tuple(names[i] for i in worst),
        reference=as_rgb(to_unit_rgb(np.asarray(reference[worst]), output_range)),
        candidate=as_rgb(to_unit_rgb(np.asarray(candidate[worst]), output_range)),
        delta_e=delta_e[worst].astype(np.float32),
        image_delta_e=tuple(float(per_image[i]) for i in worst),
        histogram=histogram,
    )
