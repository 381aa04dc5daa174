"""``input_range``: no normalization between the pixels and the first weighted layer."""

from __future__ import annotations

from qcheck.analyze.causes import CauseAnalysis
from qcheck.analyze.evidence import ModelEvidence
from qcheck.analyze.simulate import Simulation
from qcheck.results import Attribution, Finding
from qcheck.types import Action, Cause, Severity

__all__ = ["NORMALIZERS", "attribute", "findings"]

NORMALIZERS = frozenset({"Rescaling", "Normalization", "BatchNormalization",
                         "LayerNormalization", "GroupNormalization", "UnitNormalization"})


def findings(evidence: ModelEvidence) -> list[Finding]:
    frontier = [f for f in evidence.facts if evidence.input_name in f.inbound]
    seen: set[str] = set()
    while frontier:
        facts = frontier.pop()
        if facts.name in seen or facts.kind in NORMALIZERS:
            continue
        seen.add(facts.name)
        if facts.weighted:
            span = evidence.input_range
            if span.low < 0 < span.high:  # −1:1 pixels are already zero-centred
                return []
            raw = span.span > 2.0
            severity = Severity.WARNING if raw else Severity.INFO
            what = (f"raw {span} pixel values" if raw else f"{span} pixels, not zero-centred")
            return [Finding(
                facts.name, Cause.INPUT_RANGE, severity,
                f"{facts.name} ({facts.kind}) sees {what} with no normalization layer before it; "
                "its weights and bias must absorb the offset and scale, which widens the "
                "ranges quantization has to cover")]
        frontier.extend(evidence.consumers(facts.name))
    return []


def attribute(sim: Simulation, input_name: str) -> list[Attribution]:
    if not sim.scheme.quantized_input:
        return []
    measured = sim.measure(sim.outputs(quantize_input=True))
    stats = sim.input_stats
    return [Attribution(input_name, Cause.INPUT_RANGE, measured.drift, {
        "calibrated_range": [round(stats.low, 6), round(stats.high, 6)],
        "step": round((max(stats.high, 0.0) - min(stats.low, 0.0)) / 255.0, 8),
        "chroma_share": round(measured.chroma_share, 3),
    })]


ANALYSIS = CauseAnalysis(
    Cause.INPUT_RANGE, findings,
    lambda sim, evidence, found: [*found, *attribute(sim, evidence.input_name)],
    (Action.FIX_INPUT_RANGE,), order=3)
