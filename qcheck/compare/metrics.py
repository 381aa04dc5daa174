"""One call from raw outputs to the contract's ``Metrics`` and the artifacts seen."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from qcheck.compare.artifacts import add_stats, artifact_stats, decide_artifacts
from qcheck.compare.color import compare_colour, to_unit_rgb
from qcheck.compare.tensor import max_abs_error, sqnr_db, top1_agreement
from qcheck.types import ArtifactKind, InputRange, Metrics

__all__ = ["CHUNK", "OutputComparison", "compare_outputs", "out_of_range_fraction",
           "reference_lab"]

FLOAT16_MAX = float(np.finfo(np.float16).max)
CHUNK = 16  # images compared at a time


@dataclass(frozen=True)
class OutputComparison:
    metrics: Metrics
    artifacts_seen: tuple[ArtifactKind, ...]
    delta_e: np.ndarray | None  # (N, H, W) float32 per-pixel CIEDE2000, for image outputs


def compare_outputs(reference: np.ndarray, candidate: np.ndarray, *, image_output: bool,
                    logits: bool, output_range: InputRange, clipped_fraction: float,
                    lab_reference: np.ndarray | None = None, chunk: int = CHUNK
                    ) -> OutputComparison:
    """Raw float outputs of the Keras model and of a target, in the model's own range.

    Image outputs are compared ``chunk`` images at a time, so memory stays bounded however
    many evaluation images there are; ``lab_reference`` (the reference in CIELAB) can be
    shared between targets.
    """
    if candidate.shape != reference.shape:
        raise ValueError(f"output shape {candidate.shape} differs from float {reference.shape}")
    tensor = Metrics(
        sqnr_db=sqnr_db(reference, candidate),
        max_abs_error=max_abs_error(reference, candidate),
        top1_agreement=top1_agreement(reference, candidate) if logits else None,
        clipped_fraction=clipped_fraction,
    )
    if not image_output:
        return OutputComparison(tensor, (), None)
    count = len(reference)
    delta_e = np.empty(reference.shape[:3], dtype=np.float32)
    ssim: list[float] = []
    stats: dict[ArtifactKind, dict[str, float]] = {}
    sums = {"sq": 0.0, "n": 0.0, "light": 0.0, "chroma": 0.0}
    bias = np.zeros(3)
    for start in range(0, count, chunk):
        stop = min(start + chunk, count)
        ref = to_unit_rgb(np.asarray(reference[start:stop]), output_range)
        cand = to_unit_rgb(np.asarray(candidate[start:stop]), output_range)
        lab = None if lab_reference is None else np.asarray(lab_reference[start:stop],
                                                            dtype=np.float32)
        part = compare_colour(ref, cand, lab_reference=lab)
        delta_e[start:stop] = part.delta_e
        ssim.extend(part.ssim_per_image)
        add_stats(stats, artifact_stats(part))
        error = part.candidate - part.reference
        sums["sq"] += float(np.sum(np.square(error, dtype=np.float64)))
        sums["n"] += float(error.size)
        bias += np.sum(error, axis=(0, 1, 2), dtype=np.float64)
        diff = part.lab_candidate - part.lab_reference
        sums["light"] += float(np.sum(diff[..., 0] ** 2))
        sums["chroma"] += float(np.sum(diff[..., 1:] ** 2))
    pixels = sums["n"] / 3
    energy = sums["light"] + sums["chroma"]
    mse = sums["sq"] / max(sums["n"], 1.0)
    metrics = replace(
        tensor,
        delta_e_mean=float(np.mean(delta_e, dtype=np.float64)),
        delta_e_p95=float(np.percentile(delta_e, 95)),
        delta_e_max=float(np.max(delta_e)),
        psnr_db=float("inf") if mse == 0 else 10.0 * float(np.log10(1.0 / mse)),
        ssim=float(np.mean(ssim)) if ssim else float("nan"),
        channel_bias={c: float(v) for c, v in zip("rgb", bias / max(pixels, 1.0) * 255.0,
                                                  strict=True)},
        chroma_share=sums["chroma"] / energy if energy > 0 else 0.0,
    )
    return OutputComparison(metrics, decide_artifacts(stats, clipped_fraction), delta_e)


def reference_lab(reference: np.ndarray, output_range: InputRange, chunk: int = CHUNK
                  ) -> np.ndarray:
    """The float outputs in CIELAB (float32), computed once and shared by every target."""
    from skimage import color

    lab = np.empty(reference.shape, dtype=np.float32)
    for start in range(0, len(reference), chunk):
        unit = to_unit_rgb(np.asarray(reference[start : start + chunk]), output_range)
        lab[start : start + chunk] = color.rgb2lab(unit, channel_axis=-1)
    return lab


def out_of_range_fraction(values: np.ndarray, low: float, high: float, chunk: int = CHUNK
                          ) -> float:
    """Share of ``values`` outside [low, high]: what a calibrated range would clip."""
    if values.size == 0:
        return 0.0
    outside = 0
    for start in range(0, len(values), chunk):
        part = np.asarray(values[start:start + chunk])
        outside += int(np.count_nonzero((part < low) | (part > high)))
    return outside / values.size
