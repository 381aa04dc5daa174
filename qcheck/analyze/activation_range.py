"""``activation_range``: tensors whose one shared range leaves most channels a few levels."""

from __future__ import annotations

import numpy as np

from qcheck.analyze.causes import CauseAnalysis
from qcheck.analyze.evidence import ModelEvidence
from qcheck.analyze.simulate import Config, Simulation
from qcheck.analyze.stats import ActivationStats
from qcheck.numerics import CODE_RANGES
from qcheck.results import Attribution, Finding
from qcheck.types import Action, Cause, Severity

__all__ = ["BRANCH_RATIO", "OUTLIER_RATIO", "attribute", "findings"]

BRANCH_RATIO = 100.0  # residual branches this far apart in range: "orders of magnitude"
OUTLIER_RATIO = 32.0  # one channel spanning this many times the median channel
_POOLS = ("AveragePooling", "MaxPooling", "GlobalAveragePooling", "GlobalMaxPooling")


def channel_spans(stats: ActivationStats) -> np.ndarray:
    if stats.channel_low is None or stats.channel_high is None:
        return np.zeros(0)
    return np.asarray(stats.channel_high - stats.channel_low, dtype=np.float64)


def dominant_channels(stats: ActivationStats, count: int = 3) -> list[dict[str, float]]:
    spans = channel_spans(stats)
    order = np.argsort(spans)[::-1][:count]
    return [{"channel": int(c), "span": round(float(spans[c]), 6)} for c in order]


def findings(evidence: ModelEvidence) -> list[Finding]:
    found = []
    for facts in evidence.facts:
        stats = evidence.calib_stats.get(facts.name)
        if facts.kind == "Add" and len(facts.inbound) >= 2:
            found.extend(_residual_add(evidence, facts.name, facts.inbound, stats))
        if stats is None:
            continue
        spans = channel_spans(stats)
        live = spans[spans > 0]
        if live.size > 1 and live.max() >= OUTLIER_RATIO * float(np.median(live)):
            top = int(np.argmax(spans))
            levels = 255.0 * float(np.median(live)) / float(stats.high - stats.low)
            found.append(Finding(
                facts.name, Cause.ACTIVATION_RANGE, Severity.WARNING,
                f"output channel {top} spans {spans[top]:.3g}, "
                f"{spans[top] / np.median(live):.0f}× the median channel: with one 8-bit range "
                f"for the tensor the median channel keeps about {levels:.1f} levels"))
    return found


def _residual_add(evidence: ModelEvidence, name: str, inbound: tuple[str, ...],
                  stats: ActivationStats | None) -> list[Finding]:
    spans = {b: evidence.calib_stats[b].absmax for b in inbound if b in evidence.calib_stats}
    if evidence.input_name in inbound:
        spans[evidence.input_name] = evidence.input_stats.absmax
    if len(spans) < 2 or stats is None:
        return []
    largest, smallest = max(spans.values()), max(min(spans.values()), 1e-12)
    pooled = [c for c in evidence.consumers(name) if c.kind.startswith(_POOLS)]
    measured = ", ".join(f"{b} |x|≤{v:.3g}" for b, v in spans.items())
    detail = f"residual add of {measured} → [{stats.low:.3g}, {stats.high:.3g}]"
    if pooled:
        after = evidence.calib_stats.get(pooled[0].name)
        if after is not None:
            detail += (f"; {pooled[0].name} ({pooled[0].kind}) follows and keeps "
                       f"[{after.low:.3g}, {after.high:.3g}], quantized with the add's one "
                       "8-bit range")
    if largest / smallest >= BRANCH_RATIO:
        return [Finding(name, Cause.ACTIVATION_RANGE, Severity.WARNING,
                        f"branches differ {largest / smallest:.0f}× in range: {detail}")]
    if pooled:
        return [Finding(name, Cause.ACTIVATION_RANGE, Severity.INFO, detail)]
    return []


def attribute(sim: Simulation) -> list[Attribution]:
    if sim.scheme.activations not in CODE_RANGES:
        return []
    lowest, highest = CODE_RANGES[sim.scheme.activations]
    levels = highest - lowest
    each = sim.measure_layers(sim.quantized_layers, lambda names: Config(activations=names))
    result = []
    for name, measured in each.items():
        stats = sim.calib_stats[name]
        span = max(stats.high, 0.0) - min(stats.low, 0.0)
        result.append(Attribution(name, Cause.ACTIVATION_RANGE, measured.drift, {
            "range": [round(stats.low, 6), round(stats.high, 6)],
            "step": round(span / levels, 8),
            "dominant_channels": dominant_channels(stats),
            "chroma_share": round(measured.chroma_share, 3),
        }))
    return result


ANALYSIS = CauseAnalysis(
    Cause.ACTIVATION_RANGE, findings,
    lambda sim, evidence, found: [*found, *attribute(sim)],
    (Action.EQUALIZE_CHANNELS, Action.KEEP_FLOAT, Action.INT16_ACTIVATIONS), order=0)
