"""``channel_mixing``: layers that filter the colour channels separately, so each channel's
quantization error stays its own (a colour error) unless enough mixing follows.

Every depthwise layer over the colour channels is a finding. Its severity is measured: the
layer alone is quantized as a per-tensor int8 target would (weights and output) on a few
calibration images, and when most of the resulting output error is chroma, or too few filters
mix the channels after it, it is a warning; otherwise information."""

from __future__ import annotations

from dataclasses import replace

from qcheck.analyze.causes import CauseAnalysis
from qcheck.analyze.evidence import ModelEvidence
from qcheck.results import Attribution, Finding
from qcheck.types import Action, Cause, Severity

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
        narrow = mixer is None or (filters or 0) <= COLOUR_CHANNELS
        after = f"only {filters} filters in {mixer}" if narrow and mixer else \
            "no mixing layer" if mixer is None else f"{filters} filters in {mixer}"
        share = isolated_chroma_share(evidence, name)
        measured = "" if share is None else (
            f"; quantized alone (per-tensor int8), {share:.0%} of the output error it causes "
            "is colour")
        warn = narrow or (share is not None and share >= CHROMA_SHARE)
        result.append(Finding(
            name, Cause.CHANNEL_MIXING, Severity.WARNING if warn else Severity.INFO,
            f"filters the {evidence.layer(name).in_channels} colour channels separately with "
            f"{after} after it{measured}"
            + (": each channel's rounding error stays a colour error" if warn else "")))
    return result


def isolated_chroma_share(evidence: ModelEvidence, name: str) -> float | None:
    """The chroma share of the output error when only ``name`` is quantized (weights per
    tensor, output to 8 bits), on a few calibration images; ``None`` for non-colour outputs."""
    from qcheck.analyze.forward import forward
    from qcheck.analyze.schemes import Scheme
    from qcheck.analyze.simulate import Simulation
    from qcheck.numerics import ActivationKind, WeightKind

    if evidence.output_range is None:
        return None
    inputs = evidence.model_inputs()
    sim = Simulation(model=evidence.model, facts=evidence.facts,
                     scheme=Scheme(WeightKind.INT8, False, ActivationKind.UINT8, False),
                     inputs=inputs, reference=forward(evidence.model, inputs, output=0),
                     output_range=evidence.output_range, input_stats=evidence.input_stats,
                     calib_stats=evidence.calib_stats, output_index=0)
    return sim.measure(sim.outputs(weights=(name,), activations=(name,))).chroma_share


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


ANALYSIS = CauseAnalysis(
    Cause.CHANNEL_MIXING, findings,
    lambda sim, evidence, found: attribute(found, evidence),
    (Action.EQUALIZE_CHANNELS, Action.ADD_CHANNEL_MIXING, Action.KEEP_FLOAT), order=5)
