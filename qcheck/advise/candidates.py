"""Which fixes to propose for a failing target, from its attribution, in the contract's words."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

import converters
from converters.options import AI_EDGE_QUANTIZER
from qcheck.analyze import CAUSES, fixes_for
from qcheck.analyze.channel_mixing import colour_filters
from qcheck.analyze.evidence import ModelEvidence
from qcheck.results import Attribution, TargetResult, ranked_by_relief
from qcheck.types import Action, Cause, Format, Precision

__all__ = ["COST", "Candidate", "ModelChange", "candidates", "widen"]

# Cheapest first: what a release engineer would rather ship.
COST = {
    Action.PER_CHANNEL_WEIGHTS: 0,
    Action.EQUALIZE_CHANNELS: 1,
    Action.EXTEND_CALIBRATION: 2,
    Action.SWITCH_QUANTIZER: 3,  # the same scheme from another tool, with float I/O
    Action.KEEP_FLOAT: 4,
    Action.INT16_ACTIVATIONS: 5,
    Action.QUANTIZATION_AWARE_TRAINING: 6,
    Action.FIX_INPUT_RANGE: 7,
    Action.ADD_CHANNEL_MIXING: 8,
}


class ModelChange(StrEnum):
    """What a fix does to the Keras model before converting it (``NONE``: converts it as is)."""

    NONE = "none"
    EQUALIZED = "equalized"
    BIAS_CORRECTED = "equalized-corrected"  # equalized, then biases corrected for the rounding
    FINE_TUNED = "qat"  # the model quantization-aware training produced


@dataclass(frozen=True)
class Candidate:
    action: Action
    layers: tuple[str, ...]
    reason: str
    options: converters.ConversionOptions | None = None  # None: advice that needs retraining
    model: ModelChange = ModelChange.NONE
    note: str | None = None


def candidates(result: TargetResult, evidence: ModelEvidence, equalized_layers: tuple[str, ...],
               *, qat: bool = False) -> list[Candidate]:
    """Every fix worth trying for ``result``, cheapest first; ``equalized_layers`` are the
    layers cross-layer equalization can balance (empty: it cannot help)."""
    causes = {a.cause for a in result.attribution[:3]}
    return [
        *_weight_fixes(result, causes, equalized_layers),
        *_range_fixes(result, causes),
        *_quantizer_switch(result),
        *_retraining_advice(result, evidence, causes, qat=qat),
    ]


def _quantizer_switch(result: TargetResult) -> list[Candidate]:
    """TFLite has two quantizers for the same scheme: TensorFlow's converter (the target's
    own) and ai-edge-quantizer, which rounds op by op from the float TFLite."""
    spec = result.spec
    if spec.format is not Format.TFLITE or not spec.precision.needs_calibration:
        return []
    return [Candidate(
        Action.SWITCH_QUANTIZER, (), f"{spec.name} built by ai-edge-quantizer instead of "
        "TensorFlow's converter: the same integer scheme and weight granularity, its own "
        "calibration and rounding op by op; its integer input and output carry their own "
        "scales (the I/O change says which)",
        converters.ConversionOptions(tflite_quantizer=AI_EDGE_QUANTIZER))]


def _weight_fixes(result: TargetResult, causes: set[Cause], equalized: tuple[str, ...]
                  ) -> list[Candidate]:
    spec = result.spec
    integer = spec.precision.is_integer
    found = []
    if integer and not spec.per_channel:
        found.append(Candidate(
            Action.PER_CHANNEL_WEIGHTS, (), f"{spec.name} rounds each weight tensor with one "
            "scale; per-channel scales keep every channel's levels. If per-tensor weights are a "
            "constraint of your NPU or DSP, use equalize_channels instead.",
            converters.ConversionOptions(per_channel=True)))
    if equalized and Action.EQUALIZE_CHANNELS in fixes_for(causes, CAUSES):
        found.append(Candidate(
            Action.EQUALIZE_CHANNELS, equalized,
            "cross-layer equalization balances per-channel weight ranges between consecutive "
            "layers without changing the float function (Nagel et al. 2019)",
            converters.ConversionOptions(), ModelChange.EQUALIZED))
        if integer:
            found.append(Candidate(
                Action.EQUALIZE_CHANNELS, equalized,
                "cross-layer equalization, then bias correction: each bias absorbs the mean "
                f"output shift {spec.name}'s weight rounding causes on the calibration images "
                "(Nagel et al. 2019)", converters.ConversionOptions(), ModelChange.BIAS_CORRECTED))
    return found


def _range_fixes(result: TargetResult, causes: set[Cause]) -> list[Candidate]:
    spec, top = result.spec, ranked_by_relief(result.attribution)[0]
    integer = spec.precision.is_integer
    found = []
    suggested = fixes_for(causes, CAUSES)
    if integer and Action.EXTEND_CALIBRATION in suggested:
        lacking = next((list(a.evidence.get("colours_missing_from_calibration") or [])
                        for a in result.attribution if a.cause is Cause.CALIBRATION_COVERAGE), [])
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
            _keep_float_reason(top) + "; leaving it in float costs a little size and speed",
            converters.ConversionOptions(keep_float=(layer,))))
    if spec.precision is Precision.INT8 and Action.INT16_ACTIVATIONS in suggested:
        found.append(Candidate(
            Action.INT16_ACTIVATIONS, (),
            "16-bit activations give each tensor 256× the levels (int16x8 on TFLite, 16-bit "
            "QDQ on ONNX Runtime)", converters.ConversionOptions(int16_activations=True)))
    return found


def _retraining_advice(result: TargetResult, evidence: ModelEvidence, causes: set[Cause], *,
                       qat: bool) -> list[Candidate]:
    top = result.attribution[0]
    found = []
    mixing = _mixing_layers(result.attribution, evidence)
    suggested = fixes_for(causes, CAUSES)
    if Action.ADD_CHANNEL_MIXING in suggested or mixing:
        layers = tuple(mixing) or (top.layer,)
        found.append(Candidate(
            Action.ADD_CHANNEL_MIXING, layers, "the colour channels are filtered separately "
            "with too little mixing after them", note=(
                f"retrain with more pointwise filters after {', '.join(layers)} (at least 8), "
                "or replace the depthwise layer with a full convolution over the colour channels; "
                "qcheck cannot verify this without retraining")))
    if Action.FIX_INPUT_RANGE in suggested and evidence.input_range.span > 2:
        found.append(Candidate(
            Action.FIX_INPUT_RANGE, (evidence.input_name,), "the model takes raw pixel values",
            note=("add a Rescaling(1/255) (or Normalization) layer at the input and retrain or "
                  "fine-tune, so the first layer sees values near [0, 1]; qcheck cannot verify "
                  "this without retraining")))
    if result.spec.precision.is_integer:
        reason = ("fine-tuning with simulated quantization (tensorflow-model-optimization's "
                  "8-bit scheme, distilled from the float model on the calibration images) "
                  "lets the weights adapt to the rounding; the tuned model is then converted "
                  "and calibrated like the original")
        found.append(Candidate(
            Action.QUANTIZATION_AWARE_TRAINING, (), reason, converters.ConversionOptions(),
            ModelChange.FINE_TUNED) if qat else Candidate(
            Action.QUANTIZATION_AWARE_TRAINING, (), reason,
            note="not verified: it trains, so it runs only with --qat"))
    return found


def _mixing_layers(attribution: tuple[Attribution, ...], evidence: ModelEvidence) -> list[str]:
    filters = colour_filters(evidence)
    return [a.layer for a in attribution[:5] if a.layer in filters]


def widen(candidate: Candidate, evidence: ModelEvidence) -> Candidate | None:
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


def _keep_float_reason(top: Attribution) -> str:
    if top.relief is not None:
        return (f"keeping {top.layer} float relieves the most ({top.unit} "
                f"{top.relief:.3g} on the attribution images, measured on a real artifact; "
                f"{top.cause.value})")
    return f"{top.layer} causes the most drift ({top.cause.value}, {_drift(top)})"


def _drift(item: Attribution) -> str:
    return f"{item.unit} {item.drift:.2f}" if item.measure == "delta_e" \
        else f"{item.unit} {item.drift:.3g}"
