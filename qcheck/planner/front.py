"""What a plan measured: every point, the Pareto front of cost against ΔE p95, the choice."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from qcheck.planner.recipe import Choice, Recipe
from qcheck.results import Verification

__all__ = ["Plan", "PlanPoint"]


@dataclass(frozen=True)
class PlanPoint:
    """One recipe as converted and measured (``error``: it could not be built or run)."""

    recipe: Recipe
    size_bytes: int | None = None
    verified: Verification | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    failures: tuple[str, ...] = ()
    error: str | None = None
    latency_ms: float | None = None  # median per image, 1 thread, this machine's CPU

    @property
    def ok(self) -> bool:
        return self.error is None and self.verified is not None

    @property
    def passed(self) -> bool:
        return self.verified is not None and self.verified.passed

    @property
    def cost(self) -> tuple[int, int]:
        """Size first; at equal size fewer int16 layers (they cost latency, not bytes)."""
        return (self.size_bytes or 0, self.recipe.count(Choice.INT16))

    @property
    def drift(self) -> float:
        """ΔE p95 for colour outputs, else the output kind's own score (lower is better)."""
        if self.verified is None:
            return math.inf
        if self.verified.delta_e_p95 is not None:
            return self.verified.delta_e_p95
        return self.verified.score

    def to_dict(self) -> dict[str, Any]:
        return {"layers": self.recipe.to_dict()["layers"], "built_with": self.recipe.built_with,
                "size_bytes": self.size_bytes, "latency_ms": self.latency_ms,
                "passed": self.passed, "error": self.error, "metrics": self.metrics,
                "failures": list(self.failures)}


@dataclass(frozen=True)
class Plan:
    """The measured points of one target's search and what they say."""

    target: str
    points: tuple[PlanPoint, ...]
    front: tuple[int, ...]  # indices into ``points``: size against drift, cheapest first
    chosen: int | None  # the cheapest passing point (size, then latency where measured)
    seconds: float
    budget_seconds: float
    stopped: str  # "passed", "budget" or "exhausted" (nothing left that helps)
    converted: int  # conversions made (cached points are not counted)
    recipe_file: str | None = None  # recipe.json of the chosen (else best) point
    artifact: bytes | None = field(default=None, repr=False)  # the chosen point's

    @classmethod
    def of(cls, target: str, points: list[PlanPoint], seconds: float, budget: float,
           stopped: str, converted: int) -> Plan:
        front, chosen = _front_and_choice(points)
        return cls(target, tuple(points), front, chosen, seconds, budget, stopped, converted)

    def with_points(self, points: list[PlanPoint]) -> Plan:
        """The same search with its points re-measured (latency added)."""
        front, chosen = _front_and_choice(points)
        return replace(self, points=tuple(points), front=front, chosen=chosen)

    @property
    def latency_front(self) -> tuple[int, ...]:
        """Points with a latency, none slower and worse at once: latency against drift."""
        timed = [i for i, p in enumerate(self.points) if p.ok and p.latency_ms is not None]
        return _pareto(self.points, timed, lambda p: p.latency_ms or 0.0)

    @property
    def recipe(self) -> Recipe | None:
        return None if self.chosen is None else self.points[self.chosen].recipe

    @property
    def best(self) -> PlanPoint:
        """The chosen point, else the lowest drift measured."""
        if self.chosen is not None:
            return self.points[self.chosen]
        return min(self.points, key=lambda p: p.drift)

    @property
    def summary(self) -> str:
        verdict = (f"{self.best.recipe.describe()} passes" if self.chosen is not None
                   else "no recipe passed")
        return (f"{verdict}; {len(self.points)} recipes measured ({self.converted} converted) "
                f"in {self.seconds:.0f} s, stopped: {self.stopped}")

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "passed": self.chosen is not None,
                "chosen": self.chosen, "front": list(self.front),
                "latency_front": list(self.latency_front),
                "candidates_converted": self.converted, "candidates_measured": len(self.points),
                "seconds": round(self.seconds, 2), "budget_seconds": self.budget_seconds,
                "stopped": self.stopped, "points": [p.to_dict() for p in self.points]}


def _front_and_choice(points: list[PlanPoint]) -> tuple[tuple[int, ...], int | None]:
    measured = [i for i, p in enumerate(points) if p.ok]
    front = _pareto(points, measured, lambda p: p.cost)
    passing = [i for i in measured if points[i].passed]

    def price(i: int) -> tuple[Any, ...]:
        point = points[i]
        latency = point.latency_ms if point.latency_ms is not None else math.inf
        return (point.size_bytes or 0, latency, point.recipe.count(Choice.INT16), point.drift)

    return front, min(passing, key=price, default=None)


def _pareto(points: Sequence[PlanPoint], among: list[int], cost: Callable[[PlanPoint], Any]
            ) -> tuple[int, ...]:
    """The points of ``among`` no other beats on ``cost`` and drift at once, cheapest first."""
    def beats(a: PlanPoint, b: PlanPoint) -> bool:
        no_worse = cost(a) <= cost(b) and a.drift <= b.drift
        return no_worse and (cost(a) < cost(b) or a.drift < b.drift)

    front = [i for i in among if not any(beats(points[j], points[i]) for j in among if j != i)]
    return tuple(sorted(front, key=lambda i: cost(points[i])))
