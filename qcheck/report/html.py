"""``report.html``: one self-contained page (no network), rendered with Jinja2."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jinja2

from qcheck.report import charts

if TYPE_CHECKING:
    from qcheck.report.core import Report

__all__ = ["render_html"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("qcheck.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _target_charts(report: Report) -> dict[str, dict[str, Any]]:
    drawn: dict[str, dict[str, Any]] = {}
    limits = report.thresholds
    for target in report.targets:
        entry: dict[str, Any] = {}
        visuals = report.visuals.get(target.name)
        if target.metrics.channel_bias:
            entry["bias"] = charts.bias_chart(target.metrics.channel_bias,
                                              limits.max_channel_bias)
        if visuals is not None:
            entry["histogram"] = charts.histogram_chart(visuals, limits.max_delta_e)
            if not target.passed:
                entry["images"] = charts.image_rows(visuals)
        if target.attribution:
            entry["attribution"] = charts.attribution_chart(target.attribution,
                                                            limits.max_delta_e)
        drawn[target.name] = entry
    return drawn


def render_html(report: Report) -> str:
    template = _ENV.get_template("report.html.j2")
    return template.render(data=report.to_dict(), charts=_target_charts(report))
