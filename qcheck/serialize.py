"""How measured numbers become JSON: ``report.json`` stays valid whatever a measurement
produced (NaN becomes null, infinities are capped)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["EXACT_KEYS", "PSNR_CAP_DB", "json_number", "json_safe"]

# A perfect match has infinite PSNR; JSON has no infinity, so the report caps it here.
PSNR_CAP_DB = 100.0


def json_number(value: float | None) -> float | None:
    """JSON-safe float: None stays None, infinities are capped, NaN becomes None."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return PSNR_CAP_DB if value > 0 else -PSNR_CAP_DB
    return round(value, 6)


# Keys whose numbers are an artifact's own constants, written exactly (an app codes against
# them), never rounded like measurements.
EXACT_KEYS = frozenset({"scale", "zero_point"})


def json_safe(value: Any) -> Any:
    """Free-form evidence with every float made JSON-safe (NaN becomes null): report.json
    stays valid whatever a measurement produced."""
    if isinstance(value, dict):
        return {k: (v if k in EXACT_KEYS and isinstance(v, int | float) and math.isfinite(v)
                    else json_safe(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float):
        return json_number(value)
    return value
