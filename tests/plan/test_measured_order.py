"""The planner starts from what was measured: on an instance-norm generator (where the
simulation ranks a layer first that keeping float barely relieves) the first round tries the
layer whose float-keeping relieves the most, and a passing recipe is found."""

from __future__ import annotations

import qcheck
from qcheck.planner import Choice
from tests.field_models import generators


def test_the_generator_plan_passes_starting_from_the_largest_relief() -> None:
    model = generators.instance_norm_generator()
    outcome = qcheck.plan(model, "tflite-int8", input_range="-1:1", budget_seconds=120)
    plan, report = outcome.plan, outcome.report
    assert plan is not None and plan.stopped == "passed", plan and plan.stopped
    ranking = (report.target("tflite-int8").analysis or {})["ranking"]
    first = ranking[0]["layer"]
    assert ranking[0]["relief"] > 0
    tried = [point.recipe for point in plan.points if point.recipe.layers]
    assert tried and first in dict(tried[0].layers), tried[0]
    assert plan.chosen is not None
    chosen = plan.points[plan.chosen].recipe
    assert dict(chosen.layers).get(first) in (Choice.FLOAT, Choice.INT16), chosen
