"""``qcheck plan``: the cheapest mixed-precision recipe that passes the colour gate, measured.

Load → check the target with every layer attributed → search per-layer choices (int8, int16
activations, float), each candidate converted by the real converter and measured on the
evaluation images → the Pareto front of size against ΔE p95 → ``recipe.json`` keyed by Keras
layer names and resolved to each tool's names (ai-edge-quantizer, the TFLite converter,
ONNX Runtime). ``qcheck convert --recipe`` rebuilds the artifact from that file.
``qcheck.plan`` (in ``qcheck.api``) runs it; this package is what it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from qcheck.planner.front import Plan, PlanPoint
from qcheck.planner.recipe import Choice, Recipe, load_recipe
from qcheck.planner.search import DEFAULT_BUDGET_SECONDS
from qcheck.report.core import Report

__all__ = ["DEFAULT_BUDGET_SECONDS", "Choice", "Plan", "PlanOutcome", "PlanPoint", "Recipe",
           "load_recipe"]


@dataclass(frozen=True)
class PlanOutcome:
    report: Report
    plan: Plan | None  # None: the target could not be converted or attributed

    @property
    def passed(self) -> bool:
        return self.plan is not None and self.plan.chosen is not None
