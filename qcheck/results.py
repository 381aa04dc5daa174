"""What a check produced, each result knowing its verdict: a target's metrics and the
reasons it fails, findings, attribution, suggestions with what was measured of them, and the
baseline comparison. ``to_dict`` gives the ``report.json`` shape (schema ``qcheck.report/1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from qcheck.limits import Thresholds
from qcheck.serialize import json_number, json_safe
from qcheck.types import Action, ArtifactKind, Cause, Severity, TargetSpec

__all__ = ["Attribution", "BaselineRegression", "BaselineResult", "Finding", "Metrics",
           "OutputResult", "Suggestion", "TargetResult", "Verification", "output_key",
           "ranked_by_relief"]


@dataclass(frozen=True)
class Metrics:
    """What one target did to the outputs, relative to the float Keras model."""

    delta_e_mean: float | None = None
    delta_e_p95: float | None = None
    delta_e_max: float | None = None
    psnr_db: float | None = None
    ssim: float | None = None
    channel_bias: dict[str, float] | None = None
    chroma_share: float | None = None
    clipped_fraction: float | None = None
    sqnr_db: float | None = None
    max_abs_error: float | None = None
    top1_agreement: float | None = None
    nonfinite_fraction: float | None = None  # share of output values that are NaN or ±inf
    # 1-channel (lightness) images: |ΔL*| in CIELAB instead of ΔE.
    delta_l_mean: float | None = None
    delta_l_p95: float | None = None
    delta_l_max: float | None = None
    # Class maps: share of pixels whose arg-max class agrees, and the mean IoU against the
    # float model's classes.
    class_agreement: float | None = None
    miou: float | None = None

    @property
    def is_colour(self) -> bool:
        return self.delta_e_mean is not None

    def failures(self, thresholds: Thresholds) -> list[str]:
        """Human-readable reasons this target fails, empty when it passes.

        Every comparison is written so that NaN fails it (``not value <= limit``)."""
        reasons: list[str] = []
        if self.nonfinite_fraction is None or not self.nonfinite_fraction <= 0.0:
            reasons.append(f"nonfinite_fraction {_text(self.nonfinite_fraction, '.4f')} > 0 "
                           "(NaN or infinite outputs)")
        if self.is_colour:
            reasons += _above("delta_e_mean", self.delta_e_mean, thresholds.max_delta_e)
            reasons += _above("delta_e_p95", self.delta_e_p95, thresholds.max_delta_e_p95)
            for channel, bias in (self.channel_bias or {}).items():
                if not abs(bias) <= thresholds.max_channel_bias:
                    reasons.append(f"channel_bias.{channel} {bias:+.2f} exceeds "
                                   f"±{thresholds.max_channel_bias:g}")
        elif self.delta_l_mean is not None:
            reasons += _above("delta_l_mean", self.delta_l_mean, thresholds.max_delta_e)
            reasons += _above("delta_l_p95", self.delta_l_p95, thresholds.max_delta_e_p95)
        elif self.class_agreement is not None:
            reasons += _below("class_agreement", self.class_agreement,
                              thresholds.min_class_agreement)
        else:
            if self.sqnr_db is not None:
                reasons += _below("sqnr_db", self.sqnr_db, thresholds.min_sqnr_db)
            if self.top1_agreement is not None:
                reasons += _below("top1_agreement", self.top1_agreement,
                                  thresholds.min_class_agreement)
        return reasons

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            values[item.name] = {k: json_number(v) for k, v in value.items()} \
                if isinstance(value, dict) else json_number(value)
        return values


def _above(name: str, value: float | None, limit: float) -> list[str]:
    if value is not None and value <= limit:
        return []
    return [f"{name} {_text(value, '.3f')} > {limit:g}"]


def _below(name: str, value: float | None, limit: float) -> list[str]:
    if value is not None and value >= limit:
        return []
    return [f"{name} {_text(value, '.4f')} < {limit:g}"]


def _text(value: float | None, spec: str) -> str:
    return "missing" if value is None else format(value, spec)


@dataclass(frozen=True)
class Finding:
    layer: str
    cause: Cause
    severity: Severity
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "cause": self.cause.value,
            "severity": self.severity.value,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Attribution:
    """How far the output drifts when only ``layer`` is quantized, for ``cause``: in ΔE for
    image outputs, else in the output kind's own measure (see ``qcheck.compare.drift``)."""

    layer: str
    cause: Cause
    drift: float
    evidence: dict[str, Any] = field(default_factory=dict)
    measure: str = "delta_e"
    # Measured on real artifacts (``qcheck.analyze.confirm``; None: not measured): the
    # target's drift less the drift with everything but this layer quantized, and the drift
    # with only this layer quantized, on the attribution images.
    relief: float | None = None
    measured: float | None = None

    @property
    def delta_e(self) -> float | None:
        return self.drift if self.measure == "delta_e" else None

    @property
    def unit(self) -> str:
        """The measure as a reader says it: ΔE, or the output kind's measure in words."""
        return "ΔE" if self.measure == "delta_e" else self.measure.replace("_", " ")

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "cause": self.cause.value,
            "delta_e": json_number(self.delta_e),
            "measure": self.measure,
            "value": json_number(self.drift),
            "evidence": json_safe(self.evidence),
            "relief": json_number(self.relief),
            "measured": json_number(self.measured),
        }


def ranked_by_relief(attribution: Sequence[Attribution]) -> list[Attribution]:
    """The entries whose layers were measured on real artifacts, largest relief first, then
    the others in the report's order (simulated figure, largest first): the order ``keep_float``,
    the planner and the console follow. ``attribution`` itself stays sorted by the simulated
    figure, as the contract says."""
    measured = sorted((a for a in attribution if a.relief is not None),
                      key=lambda a: (-(a.relief or 0.0), -a.drift))
    return measured + [a for a in attribution if a.relief is None]


@dataclass(frozen=True)
class Verification:
    """What was measured of a fix: ΔE for colour outputs; for other outputs the metrics their
    gate reads (``others``); ``score`` ranks fixes, lower is better."""

    delta_e_mean: float | None
    delta_e_p95: float | None
    passed: bool
    others: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, metrics: Metrics, passed: bool) -> Verification:
        names = ("delta_l_mean", "delta_l_p95", "class_agreement", "miou", "top1_agreement",
                 "sqnr_db")
        others = {n: float(v) for n in names if (v := getattr(metrics, n)) is not None}
        return cls(metrics.delta_e_mean, metrics.delta_e_p95, passed, others)

    @property
    def score(self) -> float:
        if self.delta_e_mean is not None:
            return self.delta_e_mean
        if "delta_l_mean" in self.others:
            return self.others["delta_l_mean"]
        agreement = self.others.get("class_agreement", self.others.get("top1_agreement"))
        if agreement is not None:
            return 1.0 - agreement - self.others.get("sqnr_db", 0.0) * 1e-6
        return -self.others.get("sqnr_db", 0.0)

    @property
    def headline(self) -> str:
        """The figure its gate reads first, as a person reads it: ``ΔE 0.42``."""
        if self.delta_e_mean is not None:
            return f"ΔE {self.delta_e_mean:.2f}"
        if "delta_l_mean" in self.others:
            return f"ΔL* {self.others['delta_l_mean']:.2f}"
        agreement = self.others.get("class_agreement", self.others.get("top1_agreement"))
        if agreement is not None:
            return f"agreement {agreement:.1%}"
        return f"SQNR {self.others.get('sqnr_db', float('nan')):.1f} dB"

    def to_dict(self) -> dict[str, Any]:
        return {
            "delta_e_mean": json_number(self.delta_e_mean),
            "delta_e_p95": json_number(self.delta_e_p95),
            "passed": self.passed,
            **{k: json_number(v) for k, v in self.others.items()},
        }


@dataclass(frozen=True)
class Suggestion:
    action: Action
    layers: tuple[str, ...]
    reason: str
    verified: Verification | None = None
    verified_note: str | None = None
    best: bool = False  # the cheapest fix that passed
    shipped: bool = False  # the fix ``qcheck fix`` wrote out (at most one per target)
    # What the fixed artifact changes in the I/O an app codes against (None: nothing).
    io_change: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "layers": list(self.layers),
            "reason": self.reason,
            "verified": self.verified.to_dict() if self.verified else None,
            "verified_note": self.verified_note,
            "best": self.best,
            "shipped": self.shipped,
            "io_change": self.io_change,
        }


@dataclass(frozen=True)
class TargetResult:
    spec: TargetSpec
    passed: bool
    error: str | None = None
    artifact: str | None = None
    size_bytes: int | None = None
    seconds: float = 0.0
    metrics: Metrics = field(default_factory=Metrics)
    failures: tuple[str, ...] = ()
    artifacts_seen: tuple[ArtifactKind, ...] = ()
    attribution: tuple[Attribution, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()
    # How attribution was done: images used, simulated vs real ΔE, seconds (None: not analyzed).
    analysis: dict[str, Any] | None = None
    # Kernels, latency, memory, size, coverage and the I/O contract (None: not measured).
    readiness: dict[str, Any] | None = None
    plan: Any = None  # a ``qcheck.planner.Plan`` when mixed precision was planned
    # A model with several outputs: each output's own verdict (empty for one output).
    outputs: tuple[OutputResult, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def analysed_output(self) -> str | None:
        """The output a target of a model with several is attributed, fixed and planned
        through: the first that fails, else the first (None: the model has one output)."""
        if not self.outputs:
            return None
        return next((o.name for o in self.outputs if not o.passed), self.outputs[0].name)

    def output_metrics(self, name: str | None) -> Metrics:
        """The metrics of output ``name`` (None, or a model with one output: the target's)."""
        return self.output(name).metrics if name is not None and self.outputs else self.metrics

    def output(self, name: str) -> OutputResult:
        for output in self.outputs:
            if output.name == name:
                return output
        raise KeyError(f"{self.name} has no output {name!r}; outputs: "
                       f"{', '.join(o.name for o in self.outputs) or '(one, unnamed)'}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "format": self.spec.format.value,
            "precision": self.spec.precision.value,
            "artifact": self.artifact,
            "size_bytes": self.size_bytes,
            "passed": self.passed,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "metrics": self.metrics.to_dict(),
            "failures": list(self.failures),
            "artifacts_seen": [a.value for a in self.artifacts_seen],
            "attribution": [a.to_dict() for a in self.attribution],
            "suggestions": [s.to_dict() for s in self.suggestions],
            "analysis": json_safe(self.analysis),
            "readiness": json_safe(self.readiness),
            **({"plan": self.plan.to_dict()} if self.plan is not None else {}),
            **({"outputs": [o.to_dict() for o in self.outputs]} if self.outputs else {}),
        }


def output_key(target: str, output: str) -> str:
    """Where one output's pictures are kept among the targets'."""
    return f"{target}:{output}"


@dataclass(frozen=True)
class OutputResult:
    """One output of a model with several: read as its own kind, judged by its own metrics."""

    name: str
    spec: Any  # a ``qcheck.outputs.OutputSpec``
    passed: bool
    metrics: Metrics = field(default_factory=Metrics)
    failures: tuple[str, ...] = ()
    artifacts_seen: tuple[ArtifactKind, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.spec.kind.value, "range": str(self.spec.range),
                "reason": self.spec.reason, "passed": self.passed,
                "metrics": self.metrics.to_dict(), "failures": list(self.failures),
                "artifacts_seen": [a.value for a in self.artifacts_seen]}


@dataclass(frozen=True)
class BaselineRegression:
    target: str
    metric: str
    baseline: float
    now: float

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "metric": self.metric, "baseline": self.baseline,
                "now": self.now}


@dataclass(frozen=True)
class BaselineResult:
    path: str
    regressions: tuple[BaselineRegression, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "regressions": [r.to_dict() for r in self.regressions],
            "notes": list(self.notes),
        }
