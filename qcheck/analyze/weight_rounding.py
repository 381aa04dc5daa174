"""``weight_rounding``: channels whose weights keep too few integer levels."""

from __future__ import annotations

import numpy as np

from qcheck.analyze.causes import CauseAnalysis
from qcheck.analyze.evidence import ModelEvidence
from qcheck.analyze.layers import Kernel
from qcheck.analyze.simulate import Config, Simulation
from qcheck.numerics import INT8_WEIGHT_LEVELS, WeightKind
from qcheck.results import Attribution, Finding
from qcheck.types import Action, Cause, Severity

__all__ = ["CRUSH_LEVELS", "attribute", "crushed_channels", "findings"]

# A channel whose largest weight spans fewer int8 levels than this is "crushed".
CRUSH_LEVELS = 4


def crushed_channels(kernel: Kernel, per_channel: bool = False) -> list[dict[str, float]]:
    """Channels left with fewer than ``CRUSH_LEVELS`` levels, largest loss first."""
    absmax = kernel.per_channel_absmax()
    if per_channel or absmax.max() <= 0:
        return []
    step = float(absmax.max()) / INT8_WEIGHT_LEVELS
    live = np.nonzero(absmax > 0)[0]
    crushed = [int(c) for c in live if absmax[c] < CRUSH_LEVELS * step]
    crushed.sort(key=lambda c: absmax[c])
    return [{"channel": c, "range": round(float(absmax[c]), 6),
             "levels": round(float(absmax[c]) / step, 2)} for c in crushed]


def findings(evidence: ModelEvidence) -> list[Finding]:
    found = []
    for facts in evidence.facts:
        for kernel in facts.kernels:
            crushed = crushed_channels(kernel)
            if not crushed:
                continue
            absmax = kernel.per_channel_absmax()
            live = absmax[absmax > 0]
            found.append(Finding(
                facts.name, Cause.WEIGHT_ROUNDING, Severity.WARNING,
                f"per-channel weight ranges span {live.max() / live.min():.0f}× "
                f"({live.min():.3g} to {live.max():.3g}): under per-tensor int8 weights "
                f"{len(crushed)} of {absmax.size} output channels keep fewer than "
                f"{CRUSH_LEVELS} of {INT8_WEIGHT_LEVELS} levels (channel {int(np.argmax(absmax))} "
                "sets the scale)"))
    return found


def attribute(sim: Simulation) -> list[Attribution]:
    if sim.scheme.weights is not WeightKind.INT8:
        return []
    layers = sim.layers
    each = sim.measure_layers([f.name for f in sim.facts if f.weighted],
                              lambda names: Config(weights=names))
    result = []
    for name, measured in each.items():
        facts = layers[name]
        crushed = [c for k in facts.kernels
                   for c in crushed_channels(k, per_channel=sim.scheme.per_channel)]
        absmax = np.concatenate([k.per_channel_absmax() for k in facts.kernels])
        step = (absmax.max() / INT8_WEIGHT_LEVELS) if not sim.scheme.per_channel else None
        result.append(Attribution(facts.name, Cause.WEIGHT_ROUNDING, measured.drift, {
            "granularity": "per-channel" if sim.scheme.per_channel else "per-tensor",
            "step": round(float(step), 8) if step is not None else None,
            "crushed_channels": crushed[:8],
            "crushed_count": len(crushed),
            "channels": int(absmax.size),
            "chroma_share": round(measured.chroma_share, 3),
        }))
    return result


ANALYSIS = CauseAnalysis(
    Cause.WEIGHT_ROUNDING, findings,
    lambda sim, evidence, found: [*found, *attribute(sim)],
    (Action.PER_CHANNEL_WEIGHTS, Action.EQUALIZE_CHANNELS, Action.KEEP_FLOAT), order=1)
