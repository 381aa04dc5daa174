"""One call from raw outputs to the contract's ``Metrics`` and the artifacts seen."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from qcheck.compare.artifacts import detect_artifacts
from qcheck.compare.color import ColourComparison, compare_colour, to_unit_rgb
from qcheck.compare.tensor import max_abs_error, sqnr_db, top1_agreement
from qcheck.types import ArtifactKind, InputRange, Metrics

__all__ = ["OutputComparison", "compare_outputs", "out_of_range_fraction"]

FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class OutputComparison:
    metrics: Metrics
    artifacts_seen: tuple[ArtifactKind, ...]
    colour: ColourComparison | None


def compare_outputs(reference: np.ndarray, candidate: np.ndarray, *, image_output: bool,
                    logits: bool, output_range: InputRange, clipped_fraction: float
                    ) -> OutputComparison:
    """Raw float outputs of the Keras model and of a target, in the model's own range."""
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
    colour = compare_colour(to_unit_rgb(reference, output_range),
                            to_unit_rgb(candidate, output_range))
    metrics = replace(
        tensor,
        delta_e_mean=colour.delta_e_mean,
        delta_e_p95=colour.delta_e_p95,
        delta_e_max=colour.delta_e_max,
        psnr_db=colour.psnr_db,
        ssim=colour.ssim,
        channel_bias=colour.channel_bias,
        chroma_share=colour.chroma_share,
    )
    return OutputComparison(metrics, detect_artifacts(colour, clipped_fraction), colour)


def out_of_range_fraction(values: np.ndarray, low: float, high: float) -> float:
    """Share of ``values`` outside [low, high]: what a calibrated range would clip."""
    if values.size == 0:
        return 0.0
    return float(np.mean((values < low) | (values > high)))
