"""``channel_mixing``: layers that filter the colour channels separately, with too little mixing
after them, so each channel's quantization error stays its own: a colour error."""

from __future__ import annotations

from dataclasses import replace

from qcheck.analyze.evidence import ModelEvidence
from qcheck.types import Attribution, Cause, Finding, Severity

__all__ = ["CHROMA_SHARE", "COLOUR_CHANNELS", "attribute", "colour_filters", "findings"]

COLOUR_CHANNELS = 4  # a depthwise layer over this few channels is filtering colours
CHROMA_SHARE = 0.8  # an isolated error at least this chromatic is a mixing problem


def colour_filters(evidence: ModelEvidence) -> dict[str, tuple[str | None, int | None]]:
    """Depthwise layers over colour channels → (the next mixing layer, its filter count)."""
    found: dict[str, tuple[str | None, int | None]] = {}
    for facts in evidence.facts:
        if not facts.depthwise or (facts.in_channels or 99) > COLOUR_CHANNELS:
            continue
        frontier, mixer = list(evidence.consumers(facts.name)), None
        while frontier:
            consumer = frontier.pop(0)
            if consumer.weighted and not consumer.depthwise:
                mixer = consumer
                break
            frontier.extend(evidence.consumers(consumer.name))
        found[facts.name] = (mixer.name, mixer.out_channels) if mixer else (None, None)
    return found


def findings(evidence: ModelEvidence) -> list[Finding]:
    result = []
    for name, (mixer, filters) in colour_filters(evidence).items():
        if mixer is not None and (filters or 0) > COLOUR_CHANNELS:
            continue
        after = f"only {filters} filters in {mixer}" if mixer else "no mixing layer"
        result.append(Finding(
            name, Cause.CHANNEL_MIXING, Severity.WARNING,
            f"filters the {evidence.layer(name).in_channels} colour channels separately with "
            f"{after} after it: each channel's rounding error stays a colour error"))
    return result


def attribute(attributions: list[Attribution], evidence: ModelEvidence) -> list[Attribution]:
    """Relabel a colour-filtering layer's isolated error as ``channel_mixing`` when it is chroma."""
    filters = colour_filters(evidence)
    relabelled = []
    for item in attributions:
        share = item.evidence.get("chroma_share", 0.0)
        if item.layer in filters and share >= CHROMA_SHARE and item.cause in (
                Cause.WEIGHT_ROUNDING, Cause.ACTIVATION_RANGE):
            evidence_ = {**item.evidence, "isolated_cause": item.cause.value,
                         "next_mixing_layer": filters[item.layer][0]}
            item = replace(item, cause=Cause.CHANNEL_MIXING, evidence=evidence_)
        relabelled.append(item)
    return relabelled
