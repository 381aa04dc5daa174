"""``calibration_coverage``: evaluation activations beyond the calibrated ranges, and the colours
the calibration images lack."""

from __future__ import annotations

import numpy as np
from skimage import color

from qcheck.analyze.causes import CauseAnalysis, no_findings
from qcheck.analyze.evidence import ModelEvidence
from qcheck.analyze.simulate import Config, Simulation
from qcheck.numerics import CODE_RANGES
from qcheck.results import Attribution
from qcheck.types import Action, Cause

__all__ = ["attribute", "clipped_fractions", "missing_colours"]

_HUES = ("red", "orange", "yellow", "chartreuse", "green", "spring green", "cyan", "azure",
         "blue", "violet", "magenta", "rose")
MIN_SATURATION = 0.35
HUE_PIXELS = 200_000
MIN_CLIPPED = 0.001  # layers clipping fewer evaluation values are not worth a pass


def missing_colours(calib: np.ndarray, evaluation: np.ndarray) -> list[str]:
    """Hues that make up ≥ 2 % of the evaluation's saturated pixels but < 0.5 % of calibration's."""
    def share(pixels: np.ndarray) -> np.ndarray:
        # Hue shares of a regular grid of at most HUE_PIXELS pixels: the same proportions.
        step = max(1, int(np.ceil(np.sqrt(pixels[..., 0].size / HUE_PIXELS))))
        grid = np.asarray(pixels[:, ::step, ::step] if pixels.ndim == 4 else pixels)
        hsv = color.rgb2hsv(grid.reshape(-1, 3)[None])[0]
        saturated = hsv[(hsv[:, 1] >= MIN_SATURATION) & (hsv[:, 2] >= 0.2)]
        if not len(saturated):
            return np.zeros(len(_HUES))
        bins = np.floor((saturated[:, 0] * len(_HUES) + 0.5) % len(_HUES)).astype(int)
        return np.bincount(bins, minlength=len(_HUES)) / len(saturated)

    calib_share, eval_share = share(calib), share(evaluation)
    return [_HUES[i] for i in range(len(_HUES))
            if eval_share[i] >= 0.02 and calib_share[i] < 0.005]


def clipped_fractions(sim: Simulation) -> dict[str, float]:
    """Per layer, the share of evaluation values outside the calibrated range."""
    return sim.clipped_fractions()


def attribute(sim: Simulation, evidence: ModelEvidence) -> list[Attribution]:
    if sim.scheme.activations not in CODE_RANGES:
        return []
    fractions = clipped_fractions(sim)
    lacking = missing_colours(evidence.calib_pixels, evidence.eval_pixels)
    seen_stats = sim.eval_stats
    clipped = {name: f for name, f in fractions.items() if f >= MIN_CLIPPED}
    each = sim.measure_each([Config(clip_only=(name,)) for name in clipped])
    result = []
    for (name, fraction), measured in zip(clipped.items(), each, strict=True):
        calib = sim.calib_stats[name]
        seen = seen_stats.get(name)
        result.append(Attribution(name, Cause.CALIBRATION_COVERAGE, measured.drift, {
            "clipped_fraction": round(fraction, 6),
            "calibrated_range": [round(calib.low, 6), round(calib.high, 6)],
            "evaluation_range": [round(seen.low, 6), round(seen.high, 6)] if seen else None,
            "colours_missing_from_calibration": lacking,
            "chroma_share": round(measured.chroma_share, 3),
        }))
    return result


ANALYSIS = CauseAnalysis(
    Cause.CALIBRATION_COVERAGE, no_findings,
    lambda sim, evidence, found: [*found, *attribute(sim, evidence)],
    (Action.EXTEND_CALIBRATION, Action.KEEP_FLOAT, Action.INT16_ACTIVATIONS), order=2)
