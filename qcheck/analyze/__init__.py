"""Analyze stage: findings on the model, and per-target attribution of colour drift to Keras
layers and causes, by simulating the target's quantization one layer at a time."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from converters.graph import output_paths
from qcheck.analyze import (
    activation_range,
    calibration_coverage,
    channel_mixing,
    fp16_range,
    input_range,
    weight_rounding,
)
from qcheck.analyze.artifact_ranges import artifact_ranges
from qcheck.analyze.causes import CauseAnalysis, fixes_for
from qcheck.analyze.evidence import ModelEvidence
from qcheck.analyze.layers import layer_facts
from qcheck.analyze.schemes import scheme_for
from qcheck.analyze.simulate import Simulation
from qcheck.analyze.stats import activation_stats, load_stats, save_stats
from qcheck.compare.drift import drift_measure
from qcheck.named import model_input_names
from qcheck.results import Attribution, Finding
from qcheck.types import Cause, Format, Severity, TargetSpec

if TYPE_CHECKING:
    from qcheck.session import Session

__all__ = ["CAUSES", "MAX_ATTRIBUTIONS", "CauseAnalysis", "TargetAnalysis", "attribute",
           "attribution_images", "find", "fixes_for", "gather_evidence"]

# Every cause qcheck knows, in the order its findings are listed: a new cause is one module
# (ending in its ``CauseAnalysis``) and one line here.
CAUSES: tuple[CauseAnalysis, ...] = (
    channel_mixing.ANALYSIS,
    weight_rounding.ANALYSIS,
    input_range.ANALYSIS,
    activation_range.ANALYSIS,
    fp16_range.ANALYSIS,
    calibration_coverage.ANALYSIS,
)

MAX_ATTRIBUTIONS = 20
MIN_DELTA_E = 0.01  # ΔE attributions below this are noise (the ΔE measure's floor)
MAX_IMAGES = 16
PIXEL_BUDGET = 100_000  # input pixels per attribution pass: 2 images at 224², 16 at 64²
# A classifier's or tensor's drift is one number per image, not one per pixel: more images.
MIN_IMAGES_NON_IMAGE = 4


@dataclass(frozen=True)
class TargetAnalysis:
    attribution: tuple[Attribution, ...]
    summary: dict[str, Any] = field(default_factory=dict)


def gather_evidence(session: Session) -> ModelEvidence:
    """One pass of the float model over each image half, recording every layer's range."""
    model = session.handle.model
    recorded = session.references.stats_file()
    if recorded is not None:
        input_stats, calib_stats = load_stats(recorded)
    else:
        input_stats, calib_stats = activation_stats(model, session.images.feed("calibration"))
        session.references.keep_stats(lambda path: save_stats(path, input_stats, calib_stats))
    return ModelEvidence(
        model=model,
        facts=layer_facts(model),
        input_name=model_input_names(model)[session.info.image_index],
        input_range=session.input_range,
        input_stats=input_stats,
        calib_stats=calib_stats,
        calib_pixels=session.images.calibration.pixels,
        eval_pixels=session.images.evaluation.pixels,
        output_range=session.output.range if session.output.is_colour else None,
        calibration_feed=session.images.feed("calibration")
        if session.images.calibration.extras else None,
    )


def find(evidence: ModelEvidence) -> tuple[Finding, ...]:
    found = [finding for analysis in CAUSES for finding in analysis.findings(evidence)]
    found.sort(key=lambda f: f.severity is not Severity.WARNING)
    return tuple(found)


def attribution_images(session: Session, outputs: Sequence[np.ndarray],
                       max_images: int | None = None) -> list[int]:
    """The evaluation images attribution runs on: those the targets' ``outputs`` get most
    wrong together, as many as ``PIXEL_BUDGET`` of *input* pixels allows (between 2, or 4
    for outputs that are no image, and ``MAX_IMAGES``): the forward passes cost what the input
    size makes them cost, so a 224×224 model, classifier or not, costs what a small one does.
    Every target of a check is attributed on the same images, so what depends on the weights
    alone is measured once."""
    reference = session.references.get("evaluation")
    drift = drift_measure(session.output)
    if max_images is None:
        height, width = session.images.evaluation.pixels.shape[1:3]
        fewest = 2 if reference.ndim == 4 else MIN_IMAGES_NON_IMAGE
        max_images = int(np.clip(PIXEL_BUDGET // max(height * width, 1), fewest, MAX_IMAGES))
    if len(reference) <= max_images:
        return list(range(len(reference)))
    # Each target's share of the drift, so that one far off does not choose for all.
    total = np.zeros(len(reference))
    for produced in outputs:
        per_image = np.asarray(drift(reference, produced).per_image, np.float64)
        total += per_image / max(float(per_image.sum()), 1e-12)
    return sorted(int(i) for i in np.argsort(total)[::-1][:max_images])


def _without_pass_through(items: list[Attribution], evidence: ModelEvidence
                          ) -> list[Attribution]:
    """A layer whose one input is another listed layer and whose figure, for the same cause,
    is that layer's exactly (a reshape or a depth-to-space carries its input's range and
    values unchanged) is one finding, not two: it is named in the producer's evidence."""
    by_key = {(item.layer, item.cause): item for item in items}
    merged: dict[tuple[str, Cause], list[str]] = {}
    dropped: set[tuple[str, Cause]] = set()
    order = {facts.name: index for index, facts in enumerate(evidence.facts)}
    for item in sorted(items, key=lambda i: order.get(i.layer, -1)):  # producers first
        producer = _single_input(evidence, item.layer)
        while producer is not None and (producer, item.cause) in dropped:
            producer = _single_input(evidence, producer)
        found = by_key.get((producer, item.cause)) if producer is not None else None
        if found is not None and found.drift == item.drift:
            dropped.add((item.layer, item.cause))
            merged.setdefault((found.layer, item.cause), []).append(item.layer)
    return [replace(i, evidence={**i.evidence, "same_range_as": merged[(i.layer, i.cause)]})
            if (i.layer, i.cause) in merged else i
            for i in items if (i.layer, i.cause) not in dropped]


SHARED_SCALE_KINDS = ("Concatenate",)  # integer kernels give inputs and output one scale
WIDENS_BY = 2.0  # the producer whose range is this many times every other input's sets it


def _named_at_producer(items: list[Attribution], evidence: ModelEvidence) -> list[Attribution]:
    """A range cause found at an op whose inputs share its one scale (a concatenation) is the
    producer's doing when one input's range is far the widest: the producer is named with the
    op's figure (it is quantized at that shared scale), and the op's entry says who widened it
    and which inputs share the loss."""
    found = {(item.layer, item.cause): item for item in items}
    extra: list[Attribution] = []
    for item in items:
        if item.cause is not Cause.ACTIVATION_RANGE:
            continue
        try:
            facts = evidence.layer(item.layer)
        except KeyError:
            continue
        if facts.kind not in SHARED_SCALE_KINDS or len(facts.inbound) < 2:
            continue
        spans = {name: _span(evidence, name) for name in facts.inbound}
        widest = max(spans, key=lambda name: spans[name])
        others = [span for name, span in spans.items() if name != widest]
        if spans[widest] < WIDENS_BY * max(max(others), 1e-12):
            continue
        victims = [name for name in facts.inbound if name != widest]
        note = {"widens": item.layer, "shared_with": victims,
                "widest_input_span": round(spans[widest], 6),
                "next_input_span": round(max(others), 6)}
        found[(item.layer, item.cause)] = replace(item, evidence={
            **item.evidence, "widened_by": widest, "shared_with": victims})
        own = found.get((widest, item.cause))
        if own is None:
            extra.append(Attribution(widest, item.cause, item.drift, note))
        else:
            found[(widest, item.cause)] = replace(
                own, drift=max(own.drift, item.drift), evidence={**own.evidence, **note})
    return [found[(item.layer, item.cause)] for item in items] + extra


def _span(evidence: ModelEvidence, name: str) -> float:
    stats = evidence.input_stats if name == evidence.input_name \
        else evidence.calib_stats.get(name)
    return 0.0 if stats is None else float(stats.high - stats.low)


def _single_input(evidence: ModelEvidence, name: str) -> str | None:
    try:
        inbound = evidence.layer(name).inbound
    except KeyError:
        return None
    return inbound[0] if len(inbound) == 1 else None


def attribute(evidence: ModelEvidence, session: Session, spec: TargetSpec,
              outputs: np.ndarray, images: Sequence[int] | None = None,
              artifact: bytes | None = None) -> TargetAnalysis:
    """Which Keras layers, for which causes, make ``spec``'s outputs drift (in ΔE for images,
    else in the output kind's measure: ``qcheck.compare.drift``).

    Runs on ``images`` (evaluation indices; by default ``attribution_images`` of this target
    alone).
    """
    started = time.perf_counter()
    reference = session.references.get("evaluation")
    output = session.output
    drift = drift_measure(output)
    chosen = list(images) if images is not None else attribution_images(session, [outputs])
    index = session.layout.names.index(session.output_name) \
        if session.output_name is not None else None
    output_path = output_paths(evidence.model)[index or 0]
    sim = Simulation(
        model=evidence.model, facts=evidence.facts, scheme=scheme_for(spec),
        inputs=session.images.feed("evaluation").rows(chosen),
        reference=reference[chosen], output_range=output.range,
        input_stats=evidence.input_stats, calib_stats=evidence.calib_stats,
        stored_ranges=artifact_ranges(spec.format, artifact, evidence.calib_stats,
                                      output_path)
        if artifact is not None and spec.precision.is_integer else {},
        stored_complete=spec.format is Format.TFLITE, output_layer=output_path, output=output,
        shared=evidence.weight_measures, images=tuple(chosen),
        output_index=index, image_input=session.images.evaluation.image_input,
    )
    items: list[Attribution] = []
    for analysis in sorted(CAUSES, key=lambda a: a.order):
        items = analysis.attribute(sim, evidence, items)
    items = [replace(i, measure=drift.name)
             for i in _named_at_producer(_without_pass_through(items, evidence), evidence)
             if i.drift >= drift.floor]
    items.sort(key=lambda i: (-i.drift, "widens" not in i.evidence))
    real, full = outputs[chosen], sim.full()
    summary = {
        "images": len(chosen),
        "measure": drift.name,
        f"real_{drift.name}": round(sim.measure(real).drift, 4),
        f"simulated_{drift.name}": round(sim.measure(full).drift, 4),
        f"simulation_vs_real_{drift.name}": round(sim.measure(full, against=real).drift, 4),
        "configurations": sim.configurations,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return TargetAnalysis(tuple(items[:MAX_ATTRIBUTIONS]), summary)
