"""Advise stage: propose fixes in the contract's vocabulary, apply each one qcheck can, convert
again, measure again, and rank by what was measured.

Verification converts through the same worker lanes and cache as the check, on the same images;
evaluation images never feed calibration.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import converters
from qcheck.advise.equalize import equalize
from qcheck.types import (
    Action,
    Attribution,
    Cause,
    Format,
    Suggestion,
    TargetResult,
    TargetSpec,
    Thresholds,
    Verification,
)

if TYPE_CHECKING:
    from qcheck.analyze.evidence import ModelEvidence
    from qcheck.load.model import ModelHandle
    from qcheck.session import Outcome, Session

__all__ = ["Candidate", "FixedArtifact", "advise", "keeps_scheme"]

# How the bias-corrected variant of equalize_channels introduces itself (its reason's start).
BIAS_CORRECTED = "cross-layer equalization, then bias correction"

# Cheapest first: what a release engineer would rather ship.
COST = {
    Action.PER_CHANNEL_WEIGHTS: 0,
    Action.EQUALIZE_CHANNELS: 1,
    Action.EXTEND_CALIBRATION: 2,
    Action.KEEP_FLOAT: 3,
    Action.INT16_ACTIVATIONS: 4,
    Action.QUANTIZATION_AWARE_TRAINING: 5,
    Action.FIX_INPUT_RANGE: 6,
    Action.ADD_CHANNEL_MIXING: 7,
}


@dataclass(frozen=True)
class Candidate:
    action: Action
    layers: tuple[str, ...]
    reason: str
    options: converters.ConversionOptions | None = None  # None: advice that needs retraining
    equalized: bool = False
    bias_corrected: bool = False  # equalized, then biases corrected for the target's rounding
    fine_tuned: bool = False  # converts the model quantization-aware training produced
    note: str | None = None


@dataclass(frozen=True)
class FixedArtifact:
    """The best verified fix of one target, ready to ship."""

    suggestion: Suggestion
    content: bytes
    model: bytes | None = None  # the changed .keras model, when the fix changed the model
    model_label: str = ""  # names the .keras file ``qcheck fix`` writes ("equalized")


def advise(session: Session, evidence: ModelEvidence, results: list[TargetResult],
           thresholds: Thresholds, *, verify: bool = True, qat: bool = False
           ) -> tuple[list[TargetResult], dict[str, FixedArtifact]]:
    """Attach verified suggestions to every failing target; return the best fix of each."""
    failing = [r for r in results if not r.passed and r.error is None and r.attribution]
    if not failing:
        return results, {}
    equalized_model, equalized_handle, pairs = _equalized(session, evidence, save=verify)
    corrected: dict[str, ModelHandle] = {}  # per failing target
    plans = {r.name: _candidates(r, evidence, bool(pairs), pairs, qat=qat and verify)
             for r in failing}
    jobs = {}
    for result in failing if verify else []:  # nothing is built that will not be measured
        for candidate in plans[result.name]:
            if candidate.fine_tuned:  # trains in a worker of its own, alongside the others
                jobs[(result.name, candidate)] = session.qat_job(result.spec)
            elif candidate.options is not None:
                handle = equalized_handle if candidate.equalized else None
                if candidate.bias_corrected:
                    handle = corrected[result.name] = _bias_corrected(
                        session, equalized_model, result.spec)
                jobs[(result.name, candidate)] = session.job(result.spec,
                                                             options=candidate.options,
                                                             model=handle)
    done = session.run_jobs(list(jobs.values())) if verify else {}
    advised: list[TargetResult] = []
    best: dict[str, FixedArtifact] = {}
    for result in results:
        if result.name not in plans:
            advised.append(result)
            continue
        measured: list[tuple[Suggestion, bytes | None]] = []
        for candidate in plans[result.name]:
            job = jobs.get((result.name, candidate))
            if job is None or not verify:
                measured.append((_unverified(candidate, verify), None))
                continue
            suggestion, content = _measure(candidate, done[job.key], result, session,
                                           thresholds)
            measured.append((suggestion, content))
            failed = suggestion.verified is not None and not suggestion.verified.passed
            widened = _widen(candidate, evidence) if failed and \
                candidate.action is Action.KEEP_FLOAT else None
            if widened is not None:
                retry = session.job(result.spec, options=widened.options)
                outcome = session.run_jobs([retry])[retry.key]
                measured.append(_measure(widened, outcome, result, session, thresholds))
        ranked = _rank(measured)
        suggestions = tuple(s for s, _ in ranked)
        advised.append(replace(result, suggestions=suggestions))
        for suggestion, content in ranked:
            passed = suggestion.verified is not None and suggestion.verified.passed
            if passed and content and keeps_scheme(result.spec, suggestion.action):
                handle = corrected.get(result.name) \
                    if suggestion.reason.startswith(BIAS_CORRECTED) else equalized_handle
                model = handle.path.read_bytes() if handle is not None \
                    and suggestion.action is Action.EQUALIZE_CHANNELS else None
                best[result.name] = FixedArtifact(suggestion, content, model,
                                                  "equalized" if model else "")
                break
    return advised, best


# Fixes that change a per-tensor target's numeric scheme, which an NPU or DSP may not run
# (tfmot's QAT scheme rounds Conv2D and Dense kernels per channel).
_SCHEME_CHANGES = {Action.PER_CHANNEL_WEIGHTS, Action.KEEP_FLOAT, Action.INT16_ACTIVATIONS,
                   Action.QUANTIZATION_AWARE_TRAINING}


def keeps_scheme(spec: TargetSpec, action: Action) -> bool:
    """Whether an artifact fixed by ``action`` still deploys where ``spec`` was meant to.

    A per-tensor target is taken as a hardware constraint: ``qcheck fix`` ships only fixes that
    keep per-tensor integer weights and activations there.
    """
    return spec.per_channel or not spec.precision.is_integer or action not in _SCHEME_CHANGES


def _equalized(session: Session, evidence: ModelEvidence, *, save: bool
               ) -> tuple[Any, ModelHandle | None, list[Any]]:
    model, pairs = equalize(evidence.model)
    if not pairs or not save:
        return model if pairs else None, None, pairs
    return model, _saved(session, model, "equalized"), pairs


def _bias_corrected(session: Session, model: Any, spec: TargetSpec) -> ModelHandle:
    from qcheck.advise.bias_correction import correct_biases
    from qcheck.analyze.schemes import scheme_for

    corrected, _ = correct_biases(model, scheme_for(spec), session.feed("calibration"))
    return _saved(session, corrected, "equalized-corrected")


def _saved(session: Session, model: Any, label: str) -> ModelHandle:
    """An in-memory model as a file the worker lanes can load."""
    from qcheck.load.model import ModelHandle, model_from_memory

    described = model_from_memory(model)
    path = session.workdir / f"{label}-{described.info.sha256[:12]}.keras"
    model.save(path)
    info = replace(described.info, path=str(path))
    return ModelHandle(path, info, described)


def _candidates(result: TargetResult, evidence: ModelEvidence, can_equalize: bool,
                pairs: list[Any], *, qat: bool = False) -> list[Candidate]:
    spec = result.spec
    top = result.attribution[0]
    causes = {a.cause for a in result.attribution[:3]}
    integer = spec.precision.is_integer
    found: list[Candidate] = []
    equalized_layers = tuple(sorted({p.first for p in pairs} | {p.second for p in pairs}))
    if integer and not spec.per_channel:
        found.append(Candidate(
            Action.PER_CHANNEL_WEIGHTS, (), f"{spec.name} rounds each weight tensor with one "
            "scale; per-channel scales keep every channel's levels. If per-tensor weights are a "
            "constraint of your NPU or DSP, use equalize_channels instead.",
            converters.ConversionOptions(per_channel=True)))
    if can_equalize and (causes & {Cause.WEIGHT_ROUNDING, Cause.ACTIVATION_RANGE,
                                   Cause.FP16_RANGE, Cause.CHANNEL_MIXING}):
        found.append(Candidate(
            Action.EQUALIZE_CHANNELS, equalized_layers,
            "cross-layer equalization balances per-channel weight ranges between consecutive "
            "layers without changing the float function (Nagel et al. 2019)",
            converters.ConversionOptions(), equalized=True))
        if integer:
            found.append(Candidate(
                Action.EQUALIZE_CHANNELS, equalized_layers,
                f"{BIAS_CORRECTED}: each bias absorbs the mean output shift {spec.name}'s "
                "weight rounding causes on the calibration images (Nagel et al. 2019)",
                converters.ConversionOptions(), bias_corrected=True))
    if integer and Cause.CALIBRATION_COVERAGE in causes:
        lacking: list[str] = []
        for item in result.attribution:
            if item.cause is Cause.CALIBRATION_COVERAGE:
                lacking = list(item.evidence.get("colours_missing_from_calibration") or [])
                break
        missing = f" (missing: {', '.join(lacking)})" if lacking else ""
        method = "percentile" if spec.format is Format.ONNX else "minmax"
        found.append(Candidate(
            Action.EXTEND_CALIBRATION, (),
            f"evaluation activations fall outside the calibrated ranges{missing}; add images "
            "with those colours to calibration. Verified here with qcheck's synthetic colour "
            "charts added" + (" and percentile calibration" if method == "percentile" else ""),
            converters.ConversionOptions(extra_calibration=True, calibration_method=method)))
    layer = top.layer if top.cause is not Cause.INPUT_RANGE else None
    if layer is not None and (integer or top.cause is Cause.FP16_RANGE):
        found.append(Candidate(
            Action.KEEP_FLOAT, (layer,),
            f"{layer} causes the most drift ({top.cause.value}, ΔE {top.delta_e:.2f}); leaving "
            "it in float costs a little size and speed",
            converters.ConversionOptions(keep_float=(layer,))))
    if integer and spec.precision.value == "int8" and causes & {Cause.ACTIVATION_RANGE,
                                                               Cause.CALIBRATION_COVERAGE}:
        found.append(Candidate(
            Action.INT16_ACTIVATIONS, (),
            "16-bit activations give each tensor 256× the levels (int16x8 on TFLite, 16-bit "
            "QDQ on ONNX Runtime)", converters.ConversionOptions(int16_activations=True)))
    if Cause.CHANNEL_MIXING in causes or _mixing_layers(result.attribution, evidence):
        layers = tuple(_mixing_layers(result.attribution, evidence)) or (top.layer,)
        found.append(Candidate(
            Action.ADD_CHANNEL_MIXING, layers, "the colour channels are filtered separately "
            "with too little mixing after them", note=(
                f"retrain with more pointwise filters after {', '.join(layers)} (at least 8), "
                "or replace the depthwise layer with a full convolution over the colour channels; "
                "qcheck cannot verify this without retraining")))
    if Cause.INPUT_RANGE in causes and evidence.input_range.span > 2:
        found.append(Candidate(
            Action.FIX_INPUT_RANGE, (evidence.input_name,), "the model takes raw pixel values",
            note=("add a Rescaling(1/255) (or Normalization) layer at the input and retrain or "
                  "fine-tune, so the first layer sees values near [0, 1]; qcheck cannot verify "
                  "this without retraining")))
    if integer:
        reason = ("fine-tuning with simulated quantization (tensorflow-model-optimization's "
                  "8-bit scheme, distilled from the float model on the calibration images) "
                  "lets the weights adapt to the rounding; the tuned model is then converted "
                  "and calibrated like the original")
        found.append(Candidate(
            Action.QUANTIZATION_AWARE_TRAINING, (), reason, converters.ConversionOptions(),
            fine_tuned=True) if qat else Candidate(
            Action.QUANTIZATION_AWARE_TRAINING, (), reason,
            note="not verified: it trains, so it runs only with --qat"))
    return found


def _mixing_layers(attribution: tuple[Attribution, ...], evidence: ModelEvidence) -> list[str]:
    from qcheck.analyze.channel_mixing import colour_filters

    filters = colour_filters(evidence)
    return [a.layer for a in attribution[:5] if a.layer in filters]


def _widen(candidate: Candidate, evidence: ModelEvidence) -> Candidate | None:
    """Also keep the next weighted layer float: converters requantize between neighbours."""
    layers = list(candidate.layers)
    for consumer in evidence.consumers(layers[-1]):
        if consumer.weighted and consumer.name not in layers:
            layers.append(consumer.name)
            break
    else:
        return None
    return replace(candidate, layers=tuple(layers),
                   reason=candidate.reason + f"; verified together with {layers[-1]}, which the "
                   "converter otherwise requantizes right after it",
                   options=converters.ConversionOptions(keep_float=tuple(layers)))


def _measure(candidate: Candidate, outcome: Outcome, result: TargetResult, session: Session,
             thresholds: Thresholds) -> tuple[Suggestion, bytes | None]:
    """Compare the re-converted artifact like any target: same images, same thresholds."""
    from qcheck.pipeline import assess

    check = assess(result.spec, outcome, session, thresholds)
    metrics = check.metrics
    if check.error is not None or metrics.delta_e_mean is None or metrics.delta_e_p95 is None:
        return Suggestion(candidate.action, candidate.layers, candidate.reason, None,
                          f"could not be verified: {check.error}"), None
    verification = Verification(metrics.delta_e_mean, metrics.delta_e_p95, check.passed)
    return Suggestion(candidate.action, candidate.layers, candidate.reason, verification), \
        outcome.content


def _unverified(candidate: Candidate, verify: bool) -> Suggestion:
    note = candidate.note
    if note is None and not verify:
        note = "not verified: --no-fix-verification"
    return Suggestion(candidate.action, candidate.layers, candidate.reason, None, note)


def _rank(measured: list[tuple[Suggestion, bytes | None]]
          ) -> list[tuple[Suggestion, bytes | None]]:
    """Passing fixes first, cheapest first; then the rest by measured ΔE; advice last."""
    def key(item: tuple[Suggestion, bytes | None]) -> tuple[int, float, float]:
        suggestion = item[0]
        if suggestion.verified is None:
            return (2, 0.0, COST[suggestion.action])
        if suggestion.verified.passed:  # equally cheap variants: the better measured first
            return (0, COST[suggestion.action], suggestion.verified.delta_e_mean)
        return (1, suggestion.verified.delta_e_mean, COST[suggestion.action])

    ranked = sorted(measured, key=key)
    if ranked and ranked[0][0].verified is not None and ranked[0][0].verified.passed:
        ranked[0] = (replace(ranked[0][0], best=True), ranked[0][1])
    return ranked
