"""What ``qcheck plan`` writes beside the report: plan.json, plan.html (the front chart and
the chosen recipe per layer), recipe.json and the chosen artifact."""

from __future__ import annotations

import json

import converters
from qcheck.planner.front import Plan
from qcheck.report.core import Report
from qcheck.report.text import number_text

__all__ = ["front_chart", "plan_files"]

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>qcheck plan: {{ target }}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}
td,th{border-bottom:1px solid #ddd;padding:.3em .8em;text-align:left}.pass{color:#1a7f37}
.fail{color:#d1242f}tr.chosen{background:#dafbe1}</style></head><body>
<h1>{{ target }}: {{ verdict }}</h1>
<p>{{ summary }}. Every point was converted with the real converter and measured on the
evaluation images; the attribution ranking only ordered the search.</p>
<p>Objective: <b>{{ objective }}</b> (latency: the fastest passing recipe; size: the smallest;
balanced: the fastest within 10 % of the smallest passing size).{% if runner_up %} Runner-up:
{{ runner_up }}, which lost: {{ runner_up_lost }}.{% endif %}</p>
<img alt="size against ΔE p95" src="{{ chart }}">
{% if chosen %}<h2>Chosen recipe</h2><table><tr><th>layer</th><th>precision</th><th>why</th></tr>
{% for layer, choice, why in chosen %}<tr><td>{{ layer }}</td><td>{{ choice }}</td>
<td>{{ why }}</td></tr>{% endfor %}
<tr><td><i>every other layer</i></td><td>int8</td><td></td></tr></table>{% endif %}
{% if ruled_out %}<h2>Kernel table</h2><p>Not tried at int16 ({{ kernel_tool }} has no 16-bit
activation kernel for these ops; float stayed open to them):</p>
<table><tr><th>layer</th><th>ops</th></tr>
{% for layer, ops in ruled_out %}<tr><td>{{ layer }}</td><td>{{ ops|join(', ') }}</td></tr>
{% endfor %}
</table>{% endif %}
<h2>Measured recipes</h2><table><tr><th>recipe</th><th>size</th><th>latency</th><th>ΔE mean</th>
<th>ΔE p95</th><th>verdict</th></tr>
{% for row in rows %}<tr class="{{ 'chosen' if row.chosen else '' }}"><td>{{ row.recipe }}
{% if row.front %} ◆{% endif %}</td><td>{{ row.size }}</td><td>{{ row.latency }}</td>
<td>{{ row.mean }}</td>
<td>{{ row.p95 }}</td><td class="{{ row.css }}">{{ row.verdict }}</td></tr>{% endfor %}
</table><p>◆ on the Pareto front of size against ΔE p95. Latency: median per image, 1 thread,
this machine's CPU, measured for the points on the front and those that pass.</p>
</body></html>"""


def plan_files(report: Report, plan: Plan) -> dict[str, bytes | str]:
    spec = converters.TARGETS[plan.target]
    files: dict[str, bytes | str] = {"plan.json": json.dumps(plan.to_dict(), indent=1),
                                     "plan.html": _page(report, plan)}
    if plan.recipe_file is not None:
        files["recipe.json"] = plan.recipe_file
    if plan.artifact is not None:
        files[f"{plan.target}.planned{spec.suffix}"] = plan.artifact
    return files


def _page(report: Report, plan: Plan) -> str:
    from jinja2 import Environment

    limit = report.thresholds.max_delta_e_p95
    rows = [{"recipe": p.recipe.describe(), "front": i in plan.front, "chosen": i == plan.chosen,
             "size": f"{(p.size_bytes or 0) / 1024:.1f} KiB" if p.ok else "–",
             "latency": "–" if p.latency_ms is None else f"{p.latency_ms:.2f} ms",
             "mean": number_text(p.metrics.get("delta_e_mean")),
             "p95": number_text(p.metrics.get("delta_e_p95")),
             "verdict": "pass" if p.passed else (p.error or "fail"),
             "css": "pass" if p.passed else "fail"} for i, p in enumerate(plan.points)]
    chosen = plan.recipe
    template = Environment(autoescape=True).from_string(_PAGE)
    return template.render(
        target=plan.target, summary=plan.summary, chart=front_chart(plan, limit), rows=rows,
        objective=plan.objective.value, runner_up_lost=plan.runner_up_lost,
        runner_up=None if plan.runner_up is None else plan.points[plan.runner_up].recipe.describe(),
        verdict="a recipe passes" if chosen is not None else "no recipe passes",
        chosen=[(name, choice.value, _why(plan, name)) for name, choice in chosen.layers]
        if chosen else [],
        ruled_out=sorted(plan.int16_ruled_out.items()), kernel_tool="ai-edge-quantizer")


def _why(plan: Plan, layer: str) -> str:
    """The measured relief that put the layer first in line, where attribution measured it."""
    relief = plan.reliefs.get(layer)
    if relief is None:
        return "ranked by the simulation (not measured on a real artifact)"
    return (f"keeping it float relieved ΔE {relief:.3g} on the real artifact"
            if relief > 0 else f"measured: keeping it float alone relieved {relief:.3g}")


def front_chart(plan: Plan, limit: float) -> str:
    """Size against ΔE p95 of every measured point, the front joined, the choice starred."""
    from qcheck.report.charts import figure_png, new_figure

    figure, axes = new_figure(6.0, 3.6)
    measured = [p for p in plan.points if p.ok]
    axes.scatter([(p.size_bytes or 0) / 1024 for p in measured], [p.drift for p in measured],
                 c=["#1a7f37" if p.passed else "#d1242f" for p in measured], s=18)
    front = [plan.points[i] for i in plan.front]
    axes.plot([(p.size_bytes or 0) / 1024 for p in front], [p.drift for p in front],
              color="#57606a", linewidth=1)
    if plan.chosen is not None:
        chosen = plan.points[plan.chosen]
        axes.scatter([(chosen.size_bytes or 0) / 1024], [chosen.drift], marker="*", s=160,
                     color="#1a7f37", zorder=3)
    axes.axhline(limit, color="#d1242f", linestyle="--", linewidth=1)
    axes.set_xlabel("artifact size (KiB)")
    axes.set_ylabel("ΔE p95")
    return figure_png(figure)
