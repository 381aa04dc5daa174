"""Per-layer figures measured on real artifacts, confirming the simulation's ranking.

The simulation is a screen: it is exact where the graph is convolutions and ReLUs and drifts
elsewhere (normalization, attention, gating, fused non-ReLU activations). For the layers it
ranks first, qcheck builds two real artifacts with the target's own toolchain (TFLite's
selective quantization from one calibration, ONNX Runtime's quantizer with
``nodes_to_exclude``) and runs them on the real kernels, on the attribution images:

- ``relief``: the target's drift minus the drift with **everything but that layer** quantized,
  which is what keeping the layer float buys (the ranking ``keep_float`` and the planner use);
- ``measured``: the drift with **only that layer** quantized.

Attribution is then ranked by relief; the simulated figure stays beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

import converters
from qcheck.compare.drift import DriftMeasure, drift_measure
from qcheck.jobs import ConvertJob, JobResult
from qcheck.results import Attribution, TargetResult
from qcheck.types import Cause

if TYPE_CHECKING:
    from qcheck.session import Session

__all__ = ["CONFIRMED_LAYERS", "OFF_BY", "confirm"]

CONFIRMED_LAYERS = 3  # the screen's first layers measured on real artifacts, per target
OFF_BY = 0.25  # a simulated figure further than this share from the real one is called out


def confirm(session: Session, results: list[TargetResult], outputs: dict[str, np.ndarray],
            images: Sequence[int]) -> list[TargetResult]:
    """Each attributed target's first layers measured on real artifacts (all targets' builds
    run together in the workers), and its attribution ranked by what was measured."""
    layers = list(session.info.layers)
    plans: dict[str, dict[str, tuple[ConvertJob, ConvertJob]]] = {}
    for result in results:
        if result.name not in outputs or not result.spec.precision.needs_calibration:
            continue
        chosen = _first_layers(result.attribution, set(layers))
        plans[result.name] = {layer: _jobs(session, result, layer, layers) for layer in chosen}
    jobs = [job for plan in plans.values() for pair in plan.values() for job in pair]
    if not jobs:
        return results
    done = session.run_jobs(jobs)
    reference = session.references.get("evaluation")[list(images)]
    drift = drift_measure(session.output)
    confirmed = []
    for result in results:
        if result.name not in plans:
            confirmed.append(result)
            continue
        target = drift(reference, np.asarray(outputs[result.name])[list(images)]).mean
        figures = {layer: (_figure(done[relief.key], reference, images, drift),
                           _figure(done[only.key], reference, images, drift))
                   for layer, (relief, only) in plans[result.name].items()}
        confirmed.append(_ranked(result, target, figures, images))
    return confirmed


def _first_layers(attribution: Sequence[Attribution], layers: set[str]) -> list[str]:
    """The screen's first distinct Keras layers (the input is no layer to keep float)."""
    chosen: list[str] = []
    for item in attribution:
        if item.layer in layers and item.layer not in chosen \
                and item.cause is not Cause.INPUT_RANGE:
            chosen.append(item.layer)
        if len(chosen) == CONFIRMED_LAYERS:
            break
    return chosen


def _jobs(session: Session, result: TargetResult, layer: str, layers: Sequence[str]
          ) -> tuple[ConvertJob, ConvertJob]:
    """Everything but ``layer`` quantized (its relief), and only ``layer`` quantized."""
    others = tuple(name for name in layers if not _related(name, layer))
    Options = converters.ConversionOptions
    return (session.job(result.spec, options=Options(keep_float=(layer,))),
            session.job(result.spec, options=Options(keep_float=others)))


def _related(name: str, layer: str) -> bool:
    """``name`` is ``layer``, a model containing it, or a layer inside it."""
    return name == layer or layer.startswith(name + "/") or name.startswith(layer + "/")


def _figure(outcome: JobResult, reference: np.ndarray, images: Sequence[int],
            drift: DriftMeasure) -> float | None:
    produced = outcome.output_array()
    if outcome.error is not None or produced is None:
        return None
    return float(drift(reference, np.asarray(produced)[list(images)]).mean)


def _ranked(result: TargetResult, target: float,
            figures: dict[str, tuple[float | None, float | None]], images: Sequence[int]
            ) -> TargetResult:
    """Entries of measured layers carry ``relief`` and ``measured`` and come first, largest
    relief first; the others keep the simulation's order after them."""
    entries = []
    for item in result.attribution:
        if item.layer not in figures:
            entries.append(item)
            continue
        relieved, only = figures[item.layer]
        relief = None if relieved is None else round(target - relieved, 6)
        entries.append(replace(item, relief=relief, measured=only))
    measured = sorted((e for e in entries if e.relief is not None),
                      key=lambda e: (-(e.relief or 0.0), -e.drift))
    rest = [e for e in entries if e.relief is None]
    summary = dict(result.analysis or {})
    summary["confirmed_layers"] = len(figures)
    summary["target_on_attribution_images"] = round(target, 4)
    summary["image_indices"] = list(images)
    strongest: dict[str, float] = {}  # the simulation's largest figure per layer (any cause)
    for entry in measured:
        strongest[entry.layer] = max(strongest.get(entry.layer, 0.0), entry.drift)
    off = [e.layer for e in measured if e.measured is not None
           and abs(strongest[e.layer] - e.measured) > OFF_BY * max(e.measured, 1e-9)]
    if off:
        summary["simulation_off"] = (
            f"the simulation is more than {OFF_BY:.0%} off the real artifact for "
            f"{', '.join(dict.fromkeys(off))}: the ranking follows what was measured")
    return replace(result, attribution=tuple(measured + rest), analysis=summary)
