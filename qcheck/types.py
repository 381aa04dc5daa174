"""Enums and frozen dataclasses shared by every stage of the pipeline.

The JSON shape of ``report.json`` (schema ``qcheck.report/1``) is produced here by ``to_dict``
methods, so the contract lives in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from converters.types import Format, Precision, TargetSpec
from qcheck.errors import UsageError
from qcheck.limits import check_limit

__all__ = [
    "REPORT_SCHEMA",
    "Action",
    "ArtifactKind",
    "Attribution",
    "BaselineRegression",
    "BaselineResult",
    "Cause",
    "Finding",
    "Format",
    "ImageSummary",
    "InputRange",
    "Metrics",
    "ModelInfo",
    "Precision",
    "Severity",
    "SkippedImage",
    "Suggestion",
    "TargetResult",
    "TargetSpec",
    "TensorInfo",
    "Thresholds",
    "Verification",
]

REPORT_SCHEMA = "qcheck.report/1"

# A perfect match has infinite PSNR; JSON has no infinity, so the report caps it here.
PSNR_CAP_DB = 100.0


class Cause(StrEnum):
    WEIGHT_ROUNDING = "weight_rounding"
    ACTIVATION_RANGE = "activation_range"
    CHANNEL_MIXING = "channel_mixing"
    CALIBRATION_COVERAGE = "calibration_coverage"
    INPUT_RANGE = "input_range"
    FP16_RANGE = "fp16_range"


class Action(StrEnum):
    PER_CHANNEL_WEIGHTS = "per_channel_weights"
    EQUALIZE_CHANNELS = "equalize_channels"
    KEEP_FLOAT = "keep_float"
    INT16_ACTIVATIONS = "int16_activations"
    EXTEND_CALIBRATION = "extend_calibration"
    FIX_INPUT_RANGE = "fix_input_range"
    ADD_CHANNEL_MIXING = "add_channel_mixing"
    QUANTIZATION_AWARE_TRAINING = "quantization_aware_training"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"


class ArtifactKind(StrEnum):
    TINT = "tint"
    FRINGING = "fringing"
    SPECKLE = "speckle"
    BANDING = "banding"
    CLIPPING = "clipping"
    NONFINITE = "nonfinite"  # NaN or infinite values where the float model has numbers


@dataclass(frozen=True)
class InputRange:
    """The value range the model expects for pixels (and produces, for image outputs)."""

    low: float
    high: float

    @classmethod
    def parse(cls, text: str, option: str = "--input-range") -> InputRange:
        choices = {"0:1": (0.0, 1.0), "0:255": (0.0, 255.0), "-1:1": (-1.0, 1.0)}
        if text not in choices:
            raise UsageError(
                f"{option} {text!r} is not supported; choose one of {', '.join(choices)}"
            )
        return cls(*choices[text])

    @property
    def span(self) -> float:
        return self.high - self.low

    def __str__(self) -> str:
        return f"{self.low:g}:{self.high:g}"


@dataclass(frozen=True)
class Thresholds:
    max_delta_e: float = 2.0
    max_delta_e_p95: float = 5.0
    max_channel_bias: float = 3.0
    # Non-image outputs have no colour; they pass on signal-to-quantization-noise instead.
    min_sqnr_db: float = 20.0
    # Class maps and classifiers: the share of pixels or samples whose class must not change.
    min_class_agreement: float = 0.99
    # Optional release gates on the readiness figures (``None``: not gated).
    max_latency_ms: float | None = None  # median per image, 1 thread, on this machine
    max_size_kb: float | None = None

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None and item.default is None:
                continue
            object.__setattr__(self, item.name,
                               check_limit(item.name, value, f"Thresholds {item.name}"))

    def to_dict(self) -> dict[str, float | None]:
        """Every limit in force (``None``: that gate is off)."""
        return {item.name: getattr(self, item.name) for item in fields(self)}


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
            values[item.name] = {k: _num(v) for k, v in value.items()} \
                if isinstance(value, dict) else _num(value)
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

    @property
    def delta_e(self) -> float | None:
        return self.drift if self.measure == "delta_e" else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "cause": self.cause.value,
            "delta_e": _num(self.delta_e),
            "measure": self.measure,
            "value": _num(self.drift),
            "evidence": json_safe(self.evidence),
        }


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "delta_e_mean": _num(self.delta_e_mean),
            "delta_e_p95": _num(self.delta_e_p95),
            "passed": self.passed,
            **{k: _num(v) for k, v in self.others.items()},
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

    @property
    def name(self) -> str:
        return self.spec.name

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
        }


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int | None, ...]
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorInfo:
        return cls(data["name"], tuple(data["shape"]), data["dtype"])


@dataclass(frozen=True)
class ModelInfo:
    path: str
    sha256: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    # The output layer's final activation ("sigmoid", "tanh", "softmax", …), when there is one.
    head: str | None = None
    # Every layer's path (``backbone/conv2d`` inside a nested model), to name converter nodes
    # by without loading the model; empty for a subclassed model.
    layers: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        return cls(data["path"], data["sha256"],
                   tuple(TensorInfo.from_dict(t) for t in data["inputs"]),
                   tuple(TensorInfo.from_dict(t) for t in data["outputs"]),
                   data.get("head"), tuple(str(p) for p in data.get("layers", ())))

    def cached(self) -> dict[str, Any]:
        """What the cache keeps of a model's description (``to_dict`` plus its head and layer
        paths)."""
        return {**self.to_dict(), "head": self.head, "layers": list(self.layers)}

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return self.inputs[0].shape

    @property
    def input_hw(self) -> tuple[int | None, int | None]:
        return self.input_shape[1], self.input_shape[2]


@dataclass(frozen=True)
class SkippedImage:
    file: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "reason": self.reason}


@dataclass(frozen=True)
class ImageSummary:
    calibration: int
    evaluation: int
    source: str
    skipped: tuple[SkippedImage, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibration": self.calibration,
            "evaluation": self.evaluation,
            "source": self.source,
            "skipped": [s.to_dict() for s in self.skipped],
        }


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


def _num(value: float | None) -> float | None:
    """JSON-safe float: None stays None, infinities are capped, NaN becomes None."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return PSNR_CAP_DB if value > 0 else -PSNR_CAP_DB
    return round(value, 6)


def json_safe(value: Any) -> Any:
    """Free-form evidence with every float made JSON-safe (NaN becomes null): report.json
    stays valid whatever a measurement produced."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float):
        return _num(value)
    return value
