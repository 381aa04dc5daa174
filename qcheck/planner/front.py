"""What a plan measured: every point, the Pareto front of cost against ΔE p95, the choice."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from qcheck.errors import UsageError
from qcheck.planner.recipe import Choice, Recipe
from qcheck.results import Verification

__all__ = ["SIZE_MARGIN", "Objective", "Plan", "PlanPoint"]

# ``balanced``: a passing recipe up to this much larger than the smallest passing one is as
# good on size, and then the fastest of them is chosen.
SIZE_MARGIN = 0.10


class Objective(StrEnum):
    """What the plan optimizes among passing recipes."""

    LATENCY = "latency"
    SIZE = "size"
    BALANCED = "balanced"

    @classmethod
    def parse(cls, text: str | Objective) -> Objective:
        try:
            return cls(text)
        except ValueError:
            raise UsageError(f"--objective {text!r} is not one of "
                             f"{', '.join(o.value for o in cls)}") from None


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
    chosen: int | None  # the passing point the objective prefers
    seconds: float
    budget_seconds: float
    stopped: str  # "passed", "budget" or "exhausted" (nothing left that helps)
    converted: int  # conversions made (cached points are not counted)
    recipe_file: str | None = None  # recipe.json of the chosen (else best) point
    artifact: bytes | None = field(default=None, repr=False)  # the chosen point's
    objective: Objective = Objective.BALANCED
    runner_up: int | None = None  # the passing point the objective ranks second
    runner_up_lost: str | None = None  # why it was not chosen
    # Layers the kernel table kept from 16-bit activations, with the ops that ruled them out.
    int16_ruled_out: dict[str, list[str]] = field(default_factory=dict)
    # What keeping each measured layer float relieved (attribution on the real artifact).
    reliefs: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, target: str, points: list[PlanPoint], seconds: float, budget: float,
           stopped: str, converted: int, objective: Objective = Objective.BALANCED) -> Plan:
        plan = cls(target, (), (), None, seconds, budget, stopped, converted,
                   objective=objective)
        return plan.with_points(points)

    def with_points(self, points: list[PlanPoint]) -> Plan:
        """The same search with its points (re-)measured (latency added): front and choice."""
        measured = [i for i, p in enumerate(points) if p.ok]
        front = _pareto(points, measured, lambda p: p.cost)
        ranked = _by_objective(points, [i for i in measured if points[i].passed],
                               self.objective)
        chosen, runner_up = ([*ranked, None, None])[:2]
        smallest = min((points[i].size_bytes or 0 for i in ranked), default=0)
        lost = None if chosen is None or runner_up is None else _why_lost(
            points[chosen], points[runner_up], self.objective, smallest)
        return replace(self, points=tuple(points), front=front, chosen=chosen,
                       runner_up=runner_up, runner_up_lost=lost)

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
                "stopped": self.stopped, "objective": self.objective.value,
                "runner_up": self.runner_up, "runner_up_lost": self.runner_up_lost,
                "int16_ruled_out": self.int16_ruled_out,
                "reliefs": {layer: round(v, 6) for layer, v in self.reliefs.items()},
                "points": [p.to_dict() for p in self.points]}


def _by_objective(points: Sequence[PlanPoint], passing: list[int], objective: Objective
                  ) -> list[int]:
    """Passing points, the objective's favourite first. A point without a latency counts as
    slowest; ties go to fewer int16 layers, then less drift."""
    def latency(i: int) -> float:
        value = points[i].latency_ms
        return value if value is not None else math.inf

    def size(i: int) -> int:
        return points[i].size_bytes or 0

    def rest(i: int) -> tuple[int, float]:
        return points[i].recipe.count(Choice.INT16), points[i].drift

    if objective is Objective.SIZE:
        return sorted(passing, key=lambda i: (size(i), latency(i), *rest(i)))
    if objective is Objective.LATENCY:
        return sorted(passing, key=lambda i: (latency(i), size(i), *rest(i)))
    smallest = min((size(i) for i in passing), default=0)
    within = {i for i in passing if size(i) <= smallest * (1 + SIZE_MARGIN)}
    return sorted(passing, key=lambda i: (i not in within, latency(i) if i in within else 0.0,
                                          size(i), *rest(i)))


def _why_lost(chosen: PlanPoint, second: PlanPoint, objective: Objective,
              smallest: int) -> str:
    def kib(point: PlanPoint) -> str:
        return f"{(point.size_bytes or 0) / 1024:.1f} KiB"

    def ms(point: PlanPoint) -> str:
        return "unmeasured" if point.latency_ms is None else f"{point.latency_ms:.2f} ms"

    larger = (second.size_bytes or 0) > (chosen.size_bytes or 0)
    slower = (second.latency_ms or math.inf) > (chosen.latency_ms or math.inf)
    sizes, times = f"{kib(second)} against {kib(chosen)}", f"{ms(second)} against {ms(chosen)}"
    if kib(second) == kib(chosen) and second.size_bytes != chosen.size_bytes:
        sizes = f"{second.size_bytes} against {chosen.size_bytes} bytes"  # KiB would hide it
    if objective is Objective.SIZE:
        return f"larger: {sizes}" if larger else f"as small, but slower: {times}"
    if objective is Objective.LATENCY:
        return f"slower: {times}" if slower else f"as fast, but larger: {sizes}"
    if (second.size_bytes or 0) > smallest * (1 + SIZE_MARGIN):
        return (f"more than {SIZE_MARGIN:.0%} larger than the smallest passing recipe: "
                f"{sizes}")
    return f"slower: {times}, within the {SIZE_MARGIN:.0%} size margin ({sizes})" if slower \
        else f"as fast, but larger: {sizes}"


def _pareto(points: Sequence[PlanPoint], among: list[int], cost: Callable[[PlanPoint], Any]
            ) -> tuple[int, ...]:
    """The points of ``among`` no other beats on ``cost`` and drift at once, cheapest first."""
    def beats(a: PlanPoint, b: PlanPoint) -> bool:
        no_worse = cost(a) <= cost(b) and a.drift <= b.drift
        return no_worse and (cost(a) < cost(b) or a.drift < b.drift)

    front = [i for i in among if not any(beats(points[j], points[i]) for j in among if j != i)]
    return tuple(sorted(front, key=lambda i: cost(points[i])))
