"""The library's entry points beyond ``check``: ``convert`` (one target, one file), ``fix``
(the best verified fix, shipped) and ``plan`` (mixed precision, searched and measured)."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from qcheck.cache import Cache
from qcheck.errors import ConversionError, UsageError
from qcheck.limits import Thresholds, check_limit
from qcheck.load.image_sets import ImagesArg
from qcheck.pipeline import check
from qcheck.planner import DEFAULT_BUDGET_SECONDS, PlanOutcome
from qcheck.planner.attach import PlanRequest
from qcheck.planner.front import Objective, Plan
from qcheck.planner.page import plan_files
from qcheck.planner.recipe import PLANNABLE, load_recipe
from qcheck.report.core import Report
from qcheck.report.files import atomic_write, out_folder
from qcheck.results import Suggestion, TargetResult
from qcheck.session import Session
from qcheck.settings import ModelSettings, RunSwitches
from qcheck.types import InputRange
from qcheck.validate import resolve_targets
from qcheck.workdir import work_folder

__all__ = ["convert", "fix", "plan"]


def convert(model: Any, target: str, *, calib: ImagesArg = None,
            out: str | os.PathLike[str], settings: ModelSettings | None = None,
            input_range: str | InputRange | None = None,
            custom_objects: str | os.PathLike[str] | None = None, cache: bool = True,
            recipe: str | os.PathLike[str] | None = None) -> Path:
    """Convert ``model`` for ``target`` and write the artifact to ``out`` (never overwriting);
    with ``recipe`` (a ``recipe.json`` from ``qcheck plan``), the planned mixed precision."""
    (spec,) = resolve_targets([target])
    options = None
    if recipe is not None:
        planned = load_recipe(recipe)
        if planned.target != spec.name:
            raise UsageError(f"--recipe {recipe} is for {planned.target}, not {spec.name}")
        options = planned.options()
    destination = Path(out)
    if destination.exists():
        raise UsageError(f"-o {destination} already exists; qcheck never overwrites a file")
    if destination.suffix and destination.suffix != spec.suffix:
        raise UsageError(f"-o {destination}: {spec.name} writes a {spec.suffix} file")
    with work_folder() as workdir:
        settings = ModelSettings.given(settings, input_range, None, None, custom_objects)
        session = Session.open(model, calib, None, settings, workdir, Cache(enabled=cache))
        try:
            job = session.job(spec, options=options, run=False)
            outcome = session.run_jobs([job])[job.key]
        finally:
            session.close()
    if outcome.content is None:
        raise ConversionError(outcome.error or f"{spec.name}: conversion failed")
    atomic_write(destination, outcome.content)
    return destination


def fix(model: Any, target: str, *, out: str | os.PathLike[str], calib: ImagesArg = None,
        eval: ImagesArg = None, settings: ModelSettings | None = None,
        input_range: str | InputRange | None = None,
        output_range: str | InputRange | None = None, output_kind: str | None = None,
        custom_objects: str | os.PathLike[str] | None = None,
        thresholds: Thresholds | None = None, qat: bool = False, cache: bool = True,
        progress: Any = None) -> tuple[Report, Path | None]:
    """Check ``target``, verify fixes, and write the best passing artifact into ``out``.

    Returns the report and the shipped artifact's path (``None`` when nothing passed). The
    folder gets ``report.json`` and friends, ``<target>.tflite|.onnx`` and, when the fix
    changed the model, that model: ``<model>.equalized.keras`` or ``<model>.qat.keras``.
    """
    settings = ModelSettings.given(settings, input_range, output_range, output_kind,
                                   custom_objects)
    with out_folder(out) as folder:
        report = check(model, calib, eval, [target], settings=settings, thresholds=thresholds,
                       run=RunSwitches(qat=qat, cache=cache),
                       plan=PlanRequest(), progress=progress)
        report, extra = _shipped_files(report, target)
        report.write(folder, extra)
    shipped = report.target(target).spec
    return report, (folder / f"{shipped.name}{shipped.suffix}") if extra else None


UNFIXED_DIR = "unfixed"  # in a fix's folder: the failing artifact, as measured before the fix


def _shipped_files(report: Report, target: str) -> tuple[Report, dict[str, bytes | str]]:
    """What ``fix`` writes beside the report: the shipped artifact, ``shipped.json``, and the
    model or recipe the fix made; the failing artifact moves to ``unfixed/``."""
    result = report.target(target)
    spec = result.spec
    shipped_name = f"{spec.name}{spec.suffix}"
    if result.passed and target in report.artifacts:
        return report, {shipped_name: report.artifacts[target],
                        "shipped.json": _shipped_json(result, None, shipped_name, None, None)}
    if target not in report.fixes:
        return report, {}
    fixed = report.fixes[target]
    report = _marked_shipped(report, target, fixed.suggestion)
    unfixed = f"{UNFIXED_DIR}/{shipped_name}" if result.artifact else None
    report = replace(report, targets=tuple(
        replace(t, artifact=unfixed) if t.name == target and unfixed else t
        for t in report.targets))
    extra: dict[str, bytes | str] = {shipped_name: fixed.content}
    if fixed.recipe is not None:
        extra["recipe.json"] = fixed.recipe
    model_name = None
    if fixed.model is not None:
        stem = Path(str(report.model.path)).stem if not str(report.model.path).startswith(
            "<") else "model"
        model_name = f"{stem}.{fixed.model_label}.keras"
        extra[model_name] = fixed.model
    extra["shipped.json"] = _shipped_json(result, fixed.suggestion, shipped_name, unfixed,
                                          model_name, fixed.recipe is not None)
    return report, extra


def _shipped_json(result: TargetResult, shipped: Suggestion | None, artifact: str,
                  unfixed: str | None, model: str | None, recipe: bool = False) -> str:
    """``shipped.json``: what ``fix`` shipped (``shipped`` None: the target as it was, since
    it passes) and the target's figures before."""
    metrics = result.metrics
    before = {"delta_e_mean": metrics.delta_e_mean, "delta_e_p95": metrics.delta_e_p95,
              "passed": result.passed}
    return json.dumps({
        "schema": "qcheck.shipped/1", "target": result.name, "artifact": artifact,
        "action": shipped.action.value if shipped else None,
        "layers": list(shipped.layers) if shipped else [],
        "verified": shipped.verified.to_dict() if shipped and shipped.verified else before,
        "before": {**before, "failures": list(result.failures)},
        "unfixed": unfixed, "model": model, "recipe": "recipe.json" if recipe else None,
    }, indent=2) + "\n"


def _marked_shipped(report: Report, target: str, shipped: Suggestion) -> Report:
    """The report with the suggestion ``fix`` ships marked as shipped."""
    result = report.target(target)
    suggestions = tuple(replace(s, shipped=True) if s == shipped else s
                        for s in result.suggestions)
    targets = tuple(replace(t, suggestions=suggestions) if t.name == target else t
                    for t in report.targets)
    return replace(report, targets=targets)


def plan(model: Any, target: str, *, calib: ImagesArg = None, eval: ImagesArg = None,
         settings: ModelSettings | None = None, input_range: str | InputRange | None = None,
         output_range: str | InputRange | None = None,
         output_kind: str | None = None, custom_objects: str | os.PathLike[str] | None = None,
         thresholds: Thresholds | None = None,
         budget_seconds: float = DEFAULT_BUDGET_SECONDS,
         objective: str | Objective | None = None,
         out: str | os.PathLike[str] | None = None,
         cache: bool = True, progress: Any = None) -> PlanOutcome:
    """Search mixed-precision recipes for ``target`` and, with ``out``, write the report,
    ``plan.json``, ``plan.html``, ``recipe.json`` and the chosen artifact there."""
    budget_seconds = check_limit("budget_seconds", budget_seconds, "budget_seconds")
    resolve_targets([target])  # an unknown name: the usual error, naming every target
    if target not in PLANNABLE:
        raise UsageError(f"--target {target}: qcheck plan chooses per-layer precision for the "
                         f"integer targets; valid: {', '.join(PLANNABLE)}")
    settings = ModelSettings.given(settings, input_range, output_range, output_kind,
                                   custom_objects)
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(out_folder(out)) if out is not None else None
        report = check(model, calib, eval, [target], settings=settings, thresholds=thresholds,
                       run=RunSwitches(analyze_all=True, fix_verification=False,
                                       readiness=False, cache=cache),
                       plan=PlanRequest(budget_seconds, always=True, objective=Objective.parse(
                           objective or Objective.BALANCED)),
                       progress=progress)
        found: Plan | None = report.target(target).plan
        if folder is not None:
            report.write(folder, plan_files(report, found) if found is not None else {})
    return PlanOutcome(report, found)


