"""Search per-layer precision choices for the cheapest recipe that passes the colour gate.

The attribution ranking (measured relief first, then simulated drift) only orders the search;
every point the plan reports was converted by the real converter and measured on the
evaluation images, through the same worker lanes and cache as the check. Greedy and measured:
each round tries the next cheapest protection of the worst-ranked layers on top of the best
recipe so far (all conversions of a round run together), keeps the one that lowers ΔE p95
most, and stops when a recipe passes, nothing improves, or the time budget is spent. When
the greedy rounds end without a pass, every layer at int16 is measured too (where the drift is
spread over many layers, no few of them relieve it). Then every protected layer is tried one
step cheaper, so the passing point is not dearer than it must be.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from converters.types import Format
from qcheck.assess import assess_outputs
from qcheck.jobs import JobResult
from qcheck.limits import Thresholds
from qcheck.planner.front import Objective, Plan, PlanPoint
from qcheck.planner.kernels import ruled_out
from qcheck.planner.recipe import AEQ, Choice, Recipe
from qcheck.results import Attribution, TargetResult, Verification
from qcheck.session import Session
from qcheck.types import Cause

__all__ = ["DEFAULT_BUDGET_SECONDS", "search"]

DEFAULT_BUDGET_SECONDS = 180.0
WIDTH = 4  # layers tried per round, from the top of the ranking
# Causes that 16-bit activations address; weight causes need the layer float.
_ACTIVATION_CAUSES = {Cause.ACTIVATION_RANGE, Cause.CALIBRATION_COVERAGE, Cause.INPUT_RANGE}


@dataclass(frozen=True)
class _Candidate:
    layer: str
    choices: tuple[Choice, ...]  # cheapest first


def search(session: Session, result: TargetResult, thresholds: Thresholds,
           input_name: str, budget_seconds: float = DEFAULT_BUDGET_SECONDS,
           objective: Objective = Objective.BALANCED) -> Plan:
    """Measured points from all-int8 towards the cheapest recipe that passes."""
    started = time.monotonic()
    run = _Runs(session, result, thresholds)
    made = session.store.artifact(session.job(result.spec, run=False))
    no_int16 = ruled_out(session, result.spec, made.read_bytes() if made else None)
    ranked = _ranked(result.attribution, input_name, no_int16)
    # TFLite has two quantizers; each all-int8 point is measured, the better one is the start.
    starts = [Recipe(result.name)]
    if result.spec.format is Format.TFLITE:
        starts.append(Recipe(result.name, quantizer=AEQ))
    run.measure(starts)
    current = min((r for r in starts if run.point(r).ok), key=run.rank, default=starts[0])
    stopped = "exhausted"
    while not run.point(current).passed:
        tried = [current.with_choice(c.layer, choice) for c in _untouched(ranked, current)
                 for choice in c.choices]
        if not tried:
            break
        affordable = run.affordable(budget_seconds - (time.monotonic() - started))
        if affordable < 1:
            stopped = "budget"
            break
        cut = affordable < len(tried)
        tried = tried[:affordable]  # the best-ranked first: what fits in the budget
        run.measure(tried)
        best = min((r for r in tried if run.point(r).ok), key=run.rank, default=None)
        if best is None or run.rank(best) >= run.rank(current):
            stopped = "budget" if cut else stopped
            break
        current = best
    if not run.point(current).passed and stopped != "budget":
        wide = _every_layer_wide(session, current, input_name, no_int16)
        if wide is not None and run.affordable(budget_seconds - (time.monotonic() - started)):
            run.measure([wide])
            if run.point(wide).passed:
                current = wide
    if run.point(current).passed:
        stopped = "passed"
        current = _cheapened(run, current, started, budget_seconds)
    return replace(Plan.of(result.name, run.points(), time.monotonic() - started,
                           budget_seconds, stopped, run.converted, objective),
                   int16_ruled_out=no_int16, reliefs=_reliefs(result.attribution))


def _every_layer_wide(session: Session, current: Recipe, input_name: str,
                      no_int16: dict[str, list[str]]) -> Recipe | None:
    """Every layer the recipe leaves int8 at int16 (its float layers stay float, and so do
    the layers the kernel table rules out stay int8)."""
    wide = current
    for layer in session.info.layers:
        if layer != input_name and layer not in no_int16 \
                and current.choice(layer) is Choice.INT8:
            wide = wide.with_choice(layer, Choice.INT16)
    return None if wide == current else wide


def _cheapened(run: _Runs, recipe: Recipe, started: float, budget: float) -> Recipe:
    """Each protected layer one step cheaper (float → int16 → int8) while it still passes."""
    improved = True
    while improved:
        cheaper = [recipe.with_choice(layer, _cheaper(choice)) for layer, choice in recipe.layers]
        cheaper = cheaper[:run.affordable(budget - (time.monotonic() - started))]
        run.measure(cheaper)
        passing = [r for r in cheaper if run.point(r).passed]
        improved = bool(passing)
        if passing:
            recipe = min(passing, key=run.rank)
    return recipe


def _cheaper(choice: Choice) -> Choice:
    return Choice.INT16 if choice is Choice.FLOAT else Choice.INT8


def _reliefs(attribution: Sequence[Attribution]) -> dict[str, float]:
    """What keeping each measured layer float relieved (the reason a plan protects it)."""
    return {a.layer: a.relief for a in attribution if a.relief is not None}


def _ranked(attribution: Sequence[Attribution], input_name: str,
            no_int16: dict[str, list[str]] | None = None) -> list[_Candidate]:
    """Layers whose float-keeping was measured to relieve, largest relief first; then the
    others by simulated drift (summed over causes). Each with the choices worth trying: int16
    then float where activations are to blame, float where weights are."""
    drift: dict[str, float] = {}
    relief: dict[str, float] = {}
    causes: dict[str, set[Cause]] = {}
    for entry in attribution:
        if entry.layer == input_name:  # the input's own quantization: no layer to protect
            continue
        drift[entry.layer] = drift.get(entry.layer, 0.0) + max(entry.drift, 0.0)
        if entry.relief is not None:
            relief[entry.layer] = entry.relief
        causes.setdefault(entry.layer, set()).add(entry.cause)
    relieving = sorted((layer for layer in relief if relief[layer] > 0),
                       key=lambda layer: -relief[layer])
    ordered = relieving + sorted((layer for layer in drift if layer not in relieving),
                                 key=lambda layer: -drift[layer])
    wide_ok = {layer for layer in ordered if layer not in (no_int16 or {})}
    return [_Candidate(layer, (Choice.INT16, Choice.FLOAT)
                       if causes[layer] & _ACTIVATION_CAUSES and layer in wide_ok
                       else (Choice.FLOAT,)) for layer in ordered]


def _untouched(ranked: list[_Candidate], recipe: Recipe) -> list[_Candidate]:
    """The next ``WIDTH`` layers the recipe leaves int8; a layer at int16 may still go float."""
    open_ = []
    for candidate in ranked:
        choice = recipe.choice(candidate.layer)
        if choice is Choice.FLOAT:
            continue
        choices = tuple(c for c in candidate.choices if c is not choice
                        and (choice is Choice.INT8 or c is Choice.FLOAT))
        if choices:
            open_.append(_Candidate(candidate.layer, choices))
        if len(open_) == WIDTH:
            break
    return open_


class _Runs:
    """Converts and measures recipes (each at most once), remembering every point."""

    def __init__(self, session: Session, result: TargetResult, thresholds: Thresholds):
        self.session, self.result, self.thresholds = session, result, thresholds
        self._points: dict[Recipe, PlanPoint] = {}
        self.converted = 0
        self._seconds = 0.0  # wall time spent measuring, over ``_measured`` recipes
        self._measured = 0

    def affordable(self, remaining: float) -> int:
        """How many more recipes fit in ``remaining`` seconds at the pace measured so far
        (a round's conversions run side by side, so the pace includes that)."""
        if remaining <= 0:
            return 0
        pace = self._seconds / max(self._measured, 1)
        return 10**9 if pace <= 0 else int(remaining // pace)

    def measure(self, recipes: Iterable[Recipe]) -> None:
        began = time.monotonic()
        new = [r for r in dict.fromkeys(recipes) if r not in self._points]
        jobs = {r: self.session.job(self.result.spec, options=r.options()) for r in new}
        done = self.session.run_jobs(list(jobs.values()))
        for recipe, job in jobs.items():
            outcome = done[job.key]
            self.converted += 0 if outcome.cached else 1
            self._points[recipe] = self._point(recipe, outcome)
        self._seconds += time.monotonic() - began
        self._measured += len(new)

    def _point(self, recipe: Recipe, outcome: JobResult) -> PlanPoint:
        # Every output must pass; the figures are those of the output planned through.
        checked = assess_outputs(self.result.spec, outcome, self.session.whole(),
                                 self.thresholds)
        if checked.error is not None:
            return PlanPoint(recipe, error=checked.error)
        metrics = checked.output_metrics(self.session.output_name)
        return PlanPoint(recipe, size_bytes=checked.size_bytes,
                         verified=Verification.of(metrics, checked.passed),
                         metrics=metrics.to_dict(), failures=checked.failures)

    def point(self, recipe: Recipe) -> PlanPoint:
        return self._points[recipe]

    def points(self) -> list[PlanPoint]:
        return list(self._points.values())

    def rank(self, recipe: Recipe) -> tuple[float, ...]:
        """Passing points by cost; the others by measured drift (lower first)."""
        point = self._points[recipe]
        if point.passed:
            return (0, *point.cost, point.drift)
        return (1, point.drift, *point.cost)
