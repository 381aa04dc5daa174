"""Checks of what a user asks for, shared by the command line, ``[tool.qcheck]`` and the API:
each bad value is a ``UsageError`` that names it and what is accepted."""

from __future__ import annotations

from collections.abc import Iterable

import converters
from qcheck.errors import UsageError
from qcheck.limits import LIMIT_RULES, check_limit
from qcheck.types import TargetSpec

__all__ = ["LIMIT_RULES", "check_limit", "resolve_targets"]

def resolve_targets(names: Iterable[str]) -> list[TargetSpec]:
    """Look up target names, keeping order and dropping repeats; unknown names are a usage error."""
    specs: list[TargetSpec] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name not in converters.TARGETS:
            raise UsageError(f"unknown target {name!r}; valid targets: "
                             f"{', '.join(converters.TARGETS)}")
        if converters.TARGETS[name] not in specs:
            specs.append(converters.TARGETS[name])
    if not specs:
        raise UsageError(f"no targets given; valid targets: {', '.join(converters.TARGETS)}")
    return specs
