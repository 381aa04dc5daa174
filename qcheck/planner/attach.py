"""Plan inside a check: for each target no single fix makes pass (or every target, for
``qcheck plan``), search mixed-precision recipes and offer the cheapest passing one as a fix."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from qcheck.advise import FixedArtifact, keeps_scheme
from qcheck.limits import Thresholds
from qcheck.planner.front import Objective, Plan
from qcheck.planner.latency import with_latency
from qcheck.planner.recipe import Choice
from qcheck.planner.search import DEFAULT_BUDGET_SECONDS, search
from qcheck.results import Suggestion, TargetResult
from qcheck.session import Session
from qcheck.types import Action

__all__ = ["PlanRequest", "attach_plans"]


@dataclass(frozen=True)
class PlanRequest:
    budget_seconds: float = DEFAULT_BUDGET_SECONDS
    always: bool = False  # plan passing targets and those a single fix passes too
    objective: Objective = Objective.BALANCED  # what to prefer among passing recipes


def attach_plans(session: Session, results: list[TargetResult], fixes: dict[str, FixedArtifact],
                 thresholds: Thresholds, input_name: str, request: PlanRequest,
                 say: Callable[[str], None]
                 ) -> tuple[list[TargetResult], dict[str, FixedArtifact]]:
    planned = []
    fixes = dict(fixes)
    for result in results:
        single_fix_passes = any(s.verified is not None and s.verified.passed
                                for s in result.suggestions)
        wanted = request.always or (not result.passed and not single_fix_passes)
        if not wanted or result.error is not None or not result.attribution:
            planned.append(result)
            continue
        say(f"{result.name}: planning mixed precision (budget {request.budget_seconds:.0f} s)")
        view = session.through(result.analysed_output)  # several outputs: the one failing
        plan = search(view, result, thresholds, input_name, request.budget_seconds,
                      request.objective)
        plan = with_latency(view, result, plan)
        content, toolchains = _best_made(view, result, plan)
        content = content if plan.chosen is not None else None  # ship only what passed
        plan = replace(plan, recipe_file=_recipe_file(view, plan, toolchains),
                       artifact=content)
        say(f"{result.name}: {plan.summary}")
        suggestion = _suggestion(plan)
        if suggestion is not None:
            result = replace(result, suggestions=(*result.suggestions, suggestion))
            if (not result.passed and result.name not in fixes and content is not None
                    and keeps_scheme(result.spec, suggestion.action)):
                fixes[result.name] = FixedArtifact(suggestion, content,
                                                   recipe=plan.recipe_file)
        planned.append(replace(result, plan=plan))
    return planned, fixes


def _suggestion(plan: Plan) -> Suggestion | None:
    recipe = plan.recipe
    if recipe is None or not recipe.layers:
        return None
    point = plan.points[plan.chosen or 0]
    action = Action.KEEP_FLOAT if recipe.count(Choice.FLOAT) else Action.INT16_ACTIVATIONS
    return Suggestion(action, tuple(name for name, _ in recipe.layers),
                      f"planned mixed precision: {recipe.describe()} (the cheapest of "
                      f"{len(plan.points)} measured recipes that passes)", point.verified)


def _best_made(session: Session, result: TargetResult, plan: Plan
               ) -> tuple[bytes | None, dict[str, Any]]:
    """The chosen (else the best measured) point's artifact, and its choices under each
    tool's names, as noted by the job that converted it (for TFLite, the run job's base)."""
    job = session.job(result.spec, options=plan.best.recipe.options())
    ran = session.store.cached(job)
    content = ran.content if ran is not None else None
    if ran is not None and "toolchain" in ran.notes:
        return content, ran.notes["toolchain"]
    converted = session.store.cached(job.base) if job.base is not None else None
    return content, (converted.notes.get("toolchain", {}) if converted is not None else {})


def _recipe_file(session: Session, plan: Plan, toolchains: dict[str, Any]) -> str:
    """``recipe.json``: the chosen (else the best measured) recipe, what was measured of it,
    and its choices under each tool's own names."""
    point = plan.best
    data = {**point.recipe.to_dict(), "model_sha256": session.info.sha256,
            "built_with": point.recipe.built_with,
            "passed": point.passed, "size_bytes": point.size_bytes, "measured": point.metrics,
            "toolchains": toolchains}
    return json.dumps(data, indent=1)
