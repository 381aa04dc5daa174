"""``qcheck plan``: the cheapest mixed-precision recipe that passes the colour gate, measured.

Load → check the target with every layer attributed → search per-layer choices (int8, int16
activations, float), each candidate converted by the real converter and measured on the
evaluation images → the Pareto front of size against ΔE p95 → ``recipe.json`` keyed by Keras
layer names and resolved to each tool's names (ai-edge-quantizer, the TFLite converter,
ONNX Runtime). ``qcheck convert --recipe`` rebuilds the artifact from that file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from qcheck.errors import UsageError
from qcheck.load.image_sets import ImagesArg
from qcheck.planner.attach import PlanRequest
from qcheck.planner.front import Plan, PlanPoint
from qcheck.planner.recipe import PLANNABLE, Choice, Recipe, load_recipe
from qcheck.planner.search import DEFAULT_BUDGET_SECONDS
from qcheck.report.core import Report
from qcheck.settings import ModelSettings
from qcheck.types import InputRange, Thresholds
from qcheck.validate import resolve_targets

__all__ = ["DEFAULT_BUDGET_SECONDS", "Choice", "Plan", "PlanOutcome", "PlanPoint", "Recipe",
           "load_recipe", "plan"]


@dataclass(frozen=True)
class PlanOutcome:
    report: Report
    plan: Plan | None  # None: the target could not be converted or attributed

    @property
    def passed(self) -> bool:
        return self.plan is not None and self.plan.chosen is not None


def plan(model: Any, target: str, *, calib: ImagesArg = None, eval: ImagesArg = None,
         settings: ModelSettings | None = None, input_range: str | InputRange | None = None,
         output_range: str | InputRange | None = None,
         output_kind: str | None = None, custom_objects: str | os.PathLike[str] | None = None,
         thresholds: Thresholds | None = None,
         budget_seconds: float = DEFAULT_BUDGET_SECONDS, out: str | os.PathLike[str] | None = None,
         cache: bool = True, progress: Any = None) -> PlanOutcome:
    """Search mixed-precision recipes for ``target`` and, with ``out``, write the report,
    ``plan.json``, ``plan.html``, ``recipe.json`` and the chosen artifact there."""
    from qcheck.limits import check_limit
    from qcheck.pipeline import check
    from qcheck.planner.page import plan_files
    from qcheck.report.files import prepare_out_dir

    budget_seconds = check_limit("budget_seconds", budget_seconds, "budget_seconds")
    resolve_targets([target])  # an unknown name: the usual error, naming every target
    if target not in PLANNABLE:
        raise UsageError(f"--target {target}: qcheck plan chooses per-layer precision for the "
                         f"integer targets; valid: {', '.join(PLANNABLE)}")
    folder = prepare_out_dir(out) if out is not None else None
    settings = ModelSettings.given(settings, input_range, output_range, output_kind,
                                   custom_objects)
    report = check(model, calib, eval, [target], settings=settings, thresholds=thresholds,
                   analyze_all=True,
                   fix_verification=False, readiness=False,
                   plan=PlanRequest(budget_seconds, always=True), cache=cache,
                   progress=progress)
    result = report.target(target)
    found: Plan | None = result.plan
    if folder is not None:
        report.write(folder, plan_files(report, found) if found is not None else {})
    return PlanOutcome(report, found)


