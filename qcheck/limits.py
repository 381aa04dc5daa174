"""The valid range of every limit a user can set (thresholds, gates, baseline tolerances), and
the one check the command line, ``[tool.qcheck]`` and the API all use."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from qcheck.errors import UsageError

__all__ = ["LIMIT_RULES", "TRACKED", "Thresholds", "Tolerances", "check_limit"]

# Each limit's valid values: (lowest, whether the lowest itself is allowed, highest).
LIMIT_RULES: dict[str, tuple[float, bool, float]] = {
    "max_delta_e": (0.0, False, math.inf),
    "max_delta_e_p95": (0.0, False, math.inf),
    "max_channel_bias": (0.0, False, math.inf),
    "min_sqnr_db": (0.0, True, math.inf),
    "min_class_agreement": (0.0, True, 1.0),
    "tolerance_relative": (0.0, True, math.inf),
    "tolerance_absolute": (0.0, True, math.inf),
    "tolerance_db": (0.0, True, math.inf),
    "tolerance_agreement": (0.0, True, 1.0),
    "max_latency_ms": (0.0, False, math.inf),
    "max_size_kb": (0.0, False, math.inf),
    "budget_seconds": (0.0, False, math.inf),
}


def check_limit(name: str, value: object, where: str) -> float:
    """``value`` as a float if it is a valid ``name`` limit; else a ``UsageError`` that says
    ``where`` it came from and what is accepted."""
    lowest, inclusive, highest = LIMIT_RULES[name]
    number = _number(value)
    above = number is not None and (number >= lowest if inclusive else number > lowest)
    if number is None or not math.isfinite(number) or not above or number > highest:
        bound = f"{'at least' if inclusive else 'greater than'} {lowest:g}"
        if math.isfinite(highest):
            bound += f" and at most {highest:g}"
        raise UsageError(f"{where} {value!r} must be a finite number {bound}")
    return number


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Tolerances:
    """How much worse than its baseline each metric may get, in that metric's own unit.

    ΔE and channel bias: ``relative`` × baseline + ``absolute`` (ΔE units, 8-bit levels);
    PSNR and SQNR: ``db`` decibels; SSIM: ``ssim``; class and top-1 agreement and mIoU:
    ``agreement`` (a share: 0.005 is half a point); clipped share: ``clipped``. Any new
    non-finite output is a regression.
    """

    relative: float = 0.10
    absolute: float = 0.05
    db: float = 0.5
    ssim: float = 0.005
    agreement: float = 0.005
    clipped: float = 0.002

    def allowed(self, metric: str, baseline: float) -> float:
        """How far ``metric`` may worsen from ``baseline``."""
        kind = TRACKED[metric][1]
        if kind == "colour":
            return self.relative * abs(baseline) + self.absolute
        return {"db": self.db, "ssim": self.ssim, "agreement": self.agreement,
                "clipped": self.clipped, "none": 0.0}[kind]


# The metrics a baseline tracks: metric -> (True when lower is better, its tolerance kind).
TRACKED = {"delta_e_mean": (True, "colour"), "delta_e_p95": (True, "colour"),
            "delta_e_max": (True, "colour"), "max_abs_channel_bias": (True, "colour"),
            "clipped_fraction": (True, "clipped"), "nonfinite_fraction": (True, "none"),
            "psnr_db": (False, "db"), "sqnr_db": (False, "db"), "ssim": (False, "ssim"),
            "top1_agreement": (False, "agreement"), "class_agreement": (False, "agreement"),
            "miou": (False, "agreement")}


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
