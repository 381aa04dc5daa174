"""Per-layer figures measured on real artifacts, confirming the simulation's ranking.

The simulation is a screen: it is exact where the graph is convolutions and ReLUs and drifts
elsewhere (normalization, attention, gating, fused non-ReLU activations). For the layers it
ranks first, qcheck builds two real artifacts with the target's own toolchain (TFLite's
selective quantization from one calibration, ONNX Runtime's quantizer with
``nodes_to_exclude``) and runs them on the real kernels, on the attribution images:

- ``relief``: the target's drift minus the drift with **everything but that layer** quantized,
  which is what keeping the layer float buys (the ranking ``keep_float`` and the planner use);
- ``measured``: the drift with **only that layer** quantized.

Which layers: every layer of a small graph; on a larger one the screen's first layers and the
layers the screen cannot model (normalization, attention, gating, fused activations other
than ReLU, custom layers), whose simulated figure may be far off. Attribution is then ranked
by relief; the simulated figure stays beside it. The builds are ordinary conversion jobs:
cached, and the one-layer-float build is the very artifact a ``keep_float`` fix verifies.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

import converters
from qcheck.analyze.evidence import ModelEvidence
from qcheck.analyze.layers import LayerFacts
from qcheck.compare.drift import DriftMeasure, drift_measure
from qcheck.jobs import ConvertJob, JobResult
from qcheck.results import Attribution, TargetResult, ranked_by_relief
from qcheck.types import Cause

if TYPE_CHECKING:
    from qcheck.session import Session

__all__ = ["CONFIRMED_LAYERS", "OFF_BY", "SMALL_GRAPH", "UNMODELLED_LAYERS", "confirm",
           "measured_layers"]

SMALL_GRAPH = 6  # a graph with at most this many layers to quantize has every one measured
CONFIRMED_LAYERS = 3  # on a larger graph, the screen's first layers measured, per target
UNMODELLED_LAYERS = 3  # and at most this many layers the screen cannot model
OFF_BY = 0.25  # a simulated figure further than this share from the real one is called out

# Layers whose integer kernels the simulation does not model (composites, normalization
# statistics, softmax, gating products); their simulated figure may be far off the real one.
_UNMODELLED_KINDS = frozenset({
    "GroupNormalization", "LayerNormalization", "UnitNormalization",
    "MultiHeadAttention", "Attention", "AdditiveAttention", "GroupQueryAttention",
    "Multiply", "Softmax", "Activation", "Dot", "Einsum", "EinsumDense",
})
_MODELLED_ACTIVATIONS = frozenset({"linear", "relu", "relu6", None})
_NO_OPS = frozenset({"InputLayer", "Dropout", "SpatialDropout2D", "GaussianNoise"})


def confirm(session: Session, evidence: ModelEvidence, results: list[TargetResult],
            outputs: dict[str, np.ndarray], images: Sequence[int]) -> list[TargetResult]:
    """Each attributed target's layers measured on real artifacts (all targets' builds
    run together in the workers), and its attribution ranked by what was measured."""
    layers = list(session.info.layers)
    # Every evaluation image: the whole run, the very job a keep_float fix's verification is.
    every = len(session.images.evaluation.pixels)
    rows = () if list(images) == list(range(every)) else tuple(images)
    plans: dict[str, dict[str, tuple[ConvertJob, ConvertJob]]] = {}
    for result in results:
        if result.name not in outputs or not result.spec.precision.needs_calibration:
            continue
        chosen = measured_layers(result.attribution, evidence, set(layers))
        plans[result.name] = {layer: _jobs(session, result, layer, layers, rows)
                              for layer in chosen}
    jobs = [job for plan in plans.values() for pair in plan.values() for job in pair]
    if not jobs:
        return results
    started = time.perf_counter()
    done = session.run_jobs(jobs)
    seconds = round(time.perf_counter() - started, 3)
    reference = session.references.get("evaluation")[list(images)]
    drift = drift_measure(session.output)
    confirmed = []
    for result in results:
        if result.name not in plans:
            confirmed.append(result)
            continue
        target = drift(reference, np.asarray(outputs[result.name])[list(images)]).mean
        figures = {layer: (_figure(session, done[relief.key], reference, drift),
                           _figure(session, done[only.key], reference, drift))
                   for layer, (relief, only) in plans[result.name].items()}
        confirmed.append(_ranked(result, target, figures, images, drift.floor, seconds))
    return confirmed


def measured_layers(attribution: Sequence[Attribution], evidence: ModelEvidence,
                    layers: set[str]) -> list[str]:
    """The layers to measure: every layer of a small graph; else the screen's first distinct
    layers, then the unmodelled ones it ranks highest (the input is no layer to keep float)."""
    screened = [item.layer for item in attribution
                if item.layer in layers and item.cause is not Cause.INPUT_RANGE]
    ranked = list(dict.fromkeys(screened))
    quantized = [fact.name for fact in evidence.facts if fact.name in layers
                 and fact.kind not in _NO_OPS and fact.name != evidence.input_name]
    if len(quantized) <= SMALL_GRAPH:
        return [*ranked, *(name for name in quantized if name not in ranked)]
    chosen = ranked[:CONFIRMED_LAYERS]
    facts = {fact.name: fact for fact in evidence.facts}
    unmodelled = [name for name in [*ranked, *quantized]
                  if name not in chosen and name in facts and _unmodelled(facts[name])]
    return chosen + list(dict.fromkeys(unmodelled))[:UNMODELLED_LAYERS]


def _unmodelled(fact: LayerFacts) -> bool:
    """A layer the simulation cannot model: see ``_UNMODELLED_KINDS``; a fused activation other
    than ReLU; a custom layer (code outside Keras)."""
    if fact.kind in _UNMODELLED_KINDS:
        return True
    activation = getattr(getattr(fact.layer, "activation", None), "__name__", None)
    if activation not in _MODELLED_ACTIVATIONS:
        return True
    module = type(fact.layer).__module__ if fact.layer is not None else "keras"
    return not module.startswith(("keras", "tf_keras", "tensorflow"))


def _jobs(session: Session, result: TargetResult, layer: str, layers: Sequence[str],
          rows: tuple[int, ...]) -> tuple[ConvertJob, ConvertJob]:
    """Everything but ``layer`` quantized (its relief), and only ``layer`` quantized, each
    run on the attribution images only (the conversion itself is the one a ``keep_float``
    fix verifies: it is cached without the rows)."""
    others = tuple(name for name in layers if not _related(name, layer))
    Options = converters.ConversionOptions
    return (session.job(result.spec, options=Options(keep_float=(layer,)), rows=rows),
            session.job(result.spec, options=Options(keep_float=others), rows=rows))


def _related(name: str, layer: str) -> bool:
    """``name`` is ``layer``, a model containing it, or a layer inside it."""
    return name == layer or layer.startswith(name + "/") or name.startswith(layer + "/")


def _figure(session: Session, outcome: JobResult, reference: np.ndarray,
            drift: DriftMeasure) -> float | None:
    """The drift of a build run on the attribution images (its outputs are theirs only), in
    the output the session views."""
    produced = session.select(outcome.output_array())
    if outcome.error is not None or produced is None:
        return None
    return float(drift(reference, np.asarray(produced)).mean)


def _ranked(result: TargetResult, target: float,
            figures: dict[str, tuple[float | None, float | None]], images: Sequence[int],
            floor: float, seconds: float) -> TargetResult:
    """Entries of measured layers carry ``relief`` and ``measured``; ``analysis.ranking``
    lists the measured layers, largest relief first. A measured layer the
    screen found nothing at (below its floor) but whose float-keeping relieves is listed too,
    as a range cause (what an integer artifact does to a layer it cannot model)."""
    entries = []
    for item in result.attribution:
        if item.layer not in figures:
            entries.append(item)
            continue
        relieved, only = figures[item.layer]
        relief = None if relieved is None else round(target - relieved, 6)
        entries.append(replace(item, relief=relief, measured=only))
    listed = {item.layer for item in result.attribution}
    for layer, (relieved, only) in figures.items():
        if layer in listed or relieved is None or target - relieved < floor:
            continue
        entries.append(Attribution(
            layer, Cause.ACTIVATION_RANGE, 0.0,
            {"simulated": "below the screen's floor: found by measuring the real artifact"},
            measure=result.attribution[0].measure if result.attribution else "delta_e",
            relief=round(target - relieved, 6), measured=only))
    summary = dict(result.analysis or {})
    summary["confirmed_layers"] = len(figures)
    summary["measured_seconds"] = seconds
    summary["target_on_attribution_images"] = round(target, 4)
    summary["image_indices"] = list(images)
    strongest: dict[str, float] = {}  # the simulation's largest figure per layer (any cause)
    measured = [e for e in ranked_by_relief(entries) if e.relief is not None]
    for entry in measured:
        strongest[entry.layer] = max(strongest.get(entry.layer, 0.0), entry.drift)
    first: dict[str, Attribution] = {}  # each measured layer once, in relief order
    for entry in measured:
        first.setdefault(entry.layer, entry)
    summary["ranking"] = [
        {"layer": layer, "relief": entry.relief, "measured": round(entry.measured or 0.0, 6),
         "simulated": round(strongest[layer], 6)} for layer, entry in first.items()]
    off = [e.layer for e in measured if e.measured is not None
           and abs(strongest[e.layer] - e.measured) > OFF_BY * max(e.measured, 1e-9)]
    if off:
        summary["simulation_off"] = (
            f"the simulation is more than {OFF_BY:.0%} off the real artifact for "
            f"{', '.join(dict.fromkeys(off))}: the ranking follows what was measured")
    # The contract keeps ``attribution`` sorted by the simulated figure; ``analysis.ranking``
    # and ``ranked_by_relief`` give the measured order.
    entries.sort(key=lambda e: -e.drift)
    return replace(result, attribution=tuple(entries), analysis=summary)
