"""``fp16_range``: weights or activations beyond what float16 holds, or lost as subnormals."""

from __future__ import annotations

import numpy as np

from qcheck.analyze.causes import CauseAnalysis
from qcheck.analyze.evidence import ModelEvidence
from qcheck.analyze.layers import LayerFacts
from qcheck.analyze.schemes import ONNX_FP16_CLAMP
from qcheck.analyze.simulate import Config, Simulation
from qcheck.numerics import FLOAT16_MAX, FLOAT16_MIN_NORMAL, ActivationKind, WeightKind
from qcheck.results import Attribution, Finding
from qcheck.types import Action, Cause, Severity

__all__ = ["attribute", "findings", "weight_report"]

SUBNORMAL_SHARE = 0.01


def weight_report(facts: LayerFacts, clamp: tuple[float, float] | None = None
                  ) -> dict[str, float]:
    """Shares of the layer's weights and biases that float16 storage changes beyond rounding."""
    arrays = [np.asarray(k.variable) for k in facts.kernels] + [np.asarray(b) for b in
                                                                 facts.biases]
    values = np.concatenate([np.abs(a).ravel() for a in arrays])
    nonzero = values[values > 0]
    ceiling = clamp[1] if clamp else FLOAT16_MAX
    floor = max(clamp[0], FLOAT16_MIN_NORMAL) if clamp else FLOAT16_MIN_NORMAL
    return {
        "max_abs": float(values.max()) if values.size else 0.0,
        "overflow_share": float(np.mean(values > ceiling)) if values.size else 0.0,
        "subnormal_share": float(np.mean(nonzero < floor)) if nonzero.size else 0.0,
    }


def _beyond(report: dict[str, float]) -> bool:
    return report["overflow_share"] > 0 or report["subnormal_share"] >= SUBNORMAL_SHARE


def findings(evidence: ModelEvidence) -> list[Finding]:
    found = []
    for facts in evidence.facts:
        if facts.weighted:
            report = weight_report(facts)
            if report["overflow_share"] > 0:
                found.append(Finding(facts.name, Cause.FP16_RANGE, Severity.WARNING,
                                     f"weights reach {report['max_abs']:.3g}, beyond float16's "
                                     f"{FLOAT16_MAX:g}: they become infinite"))
            elif report["max_abs"] > ONNX_FP16_CLAMP[1]:
                found.append(Finding(facts.name, Cause.FP16_RANGE, Severity.WARNING,
                                     f"weights reach {report['max_abs']:.3g}; the ONNX float16 "
                                     f"converter clamps magnitudes above {ONNX_FP16_CLAMP[1]:g}"))
            elif report["subnormal_share"] >= SUBNORMAL_SHARE:
                found.append(Finding(facts.name, Cause.FP16_RANGE, Severity.WARNING,
                                     f"{report['subnormal_share']:.1%} of the nonzero weights are "
                                     f"below float16's smallest normal {FLOAT16_MIN_NORMAL:.3g} "
                                     "and lose precision or vanish"))
        stats = evidence.calib_stats.get(facts.name)
        if stats is not None and stats.absmax > FLOAT16_MAX:
            found.append(Finding(facts.name, Cause.FP16_RANGE, Severity.WARNING,
                                 f"outputs reach {stats.absmax:.3g} on the calibration images, "
                                 f"beyond float16's {FLOAT16_MAX:g}"))
    return found


def attribute(sim: Simulation) -> list[Attribution]:
    result = []
    if sim.scheme.weights is WeightKind.FP16:
        layers = sim.layers
        weighted = sim.measure_layers([f.name for f in sim.facts if f.weighted],
                                      lambda names: Config(weights=names))
        for name, measured in weighted.items():
            facts = layers[name]
            report = weight_report(facts, sim.scheme.fp16_clamp)
            cause = Cause.FP16_RANGE if _beyond(report) else Cause.WEIGHT_ROUNDING
            result.append(Attribution(facts.name, cause, measured.drift, {
                "weights": "float16", "converter_clamp": sim.scheme.fp16_clamp,
                **{k: round(v, 6) for k, v in report.items()},
                "chroma_share": round(measured.chroma_share, 3)}))
    if sim.scheme.activations is ActivationKind.FP16:
        seen_stats = sim.eval_stats
        each = sim.measure_layers(sim.quantized_layers,
                                  lambda names: Config(activations=names))
        for name, measured in each.items():
            stats = sim.calib_stats[name]
            seen = seen_stats.get(name, stats)
            beyond = max(stats.absmax, seen.absmax) > FLOAT16_MAX
            result.append(Attribution(
                name, Cause.FP16_RANGE if beyond else Cause.ACTIVATION_RANGE, measured.drift,
                {"activations": "float16", "max_abs": round(max(stats.absmax, seen.absmax), 4),
                 "chroma_share": round(measured.chroma_share, 3)}))
    return result


ANALYSIS = CauseAnalysis(
    Cause.FP16_RANGE, findings,
    lambda sim, evidence, found: [*found, *attribute(sim)],
    (Action.EQUALIZE_CHANNELS, Action.KEEP_FLOAT), order=4)
