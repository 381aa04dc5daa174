"""Figures as the pages print them."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["number_text"]


def number_text(value: Any, spec: str = "%.2f") -> str:
    """A metric as text; missing or not finite is a dash, never an error."""
    if value is None or isinstance(value, bool) or not math.isfinite(float(value)):
        return "–"
    return spec % float(value)
