"""The valid range of every limit a user can set (thresholds, gates, baseline tolerances), and
the one check the command line, ``[tool.qcheck]`` and the API all use."""

from __future__ import annotations

import math

from qcheck.errors import UsageError

__all__ = ["LIMIT_RULES", "check_limit"]

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


