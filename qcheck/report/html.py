"""``report.html``: one self-contained page (no network), rendered with Jinja2."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import jinja2

from qcheck.cache import Cache
from qcheck.keys import JobKeys
from qcheck.report import charts
from qcheck.report.data import ReportData
from qcheck.report.explorer import layer_drift, strip_colour
from qcheck.report.text import number_text
from qcheck.results import Attribution, output_key

__all__ = ["render_html"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("qcheck.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


_ENV.filters["num"] = number_text


def grouped_issues(findings: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Readiness findings one row per (kind, op, layer), with the nodes it covers: one
    instance norm's NEG and SQUARE nodes are two rows, not twenty-six."""
    groups: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    for issue in findings:
        key = (issue["kind"], issue["op"], issue["layer"])
        group = groups.setdefault(key, {**issue, "nodes": []})
        if issue["node"] is not None:
            group["nodes"].append(issue["node"])
    return list(groups.values())


_ENV.filters["grouped_issues"] = grouped_issues


def _target_charts(report: ReportData) -> dict[str, dict[str, Any]]:
    drawn: dict[str, dict[str, Any]] = {}
    limits = report.thresholds
    for target in report.targets:
        entry: dict[str, Any] = {}
        visuals = report.visuals.get(target.name)
        if target.metrics.channel_bias and all(
                math.isfinite(v) for v in target.metrics.channel_bias.values()):
            entry["bias"] = charts.bias_chart(target.metrics.channel_bias,
                                              limits.max_channel_bias)
        if visuals is not None:
            entry["histogram"] = charts.histogram_chart(visuals, limits.max_delta_e)
            if not target.passed:
                entry["images"] = charts.image_rows(visuals)
        outputs = {}
        for output in target.outputs:  # a model with several: each output's worst images
            seen = report.visuals.get(output_key(target.name, output.name))
            if seen is not None and not output.passed:
                outputs[output.name] = charts.image_rows(seen)
        if outputs:
            entry["output_images"] = outputs
        if target.attribution:
            entry["attribution"] = charts.attribution_chart(target.attribution,
                                                            limits.max_delta_e)
            if not target.passed:
                entry.update(_strip(target.attribution, report.model.layers))
        drawn[target.name] = entry
    return drawn


def _strip(attribution: Sequence[Attribution], layers: Sequence[str]) -> dict[str, Any]:
    """The graph strip: every layer in graph order, coloured by its share of the drift."""
    drifts = layer_drift(attribution)
    # Attributed names outside the layer list (the model's input) lead the strip.
    order = [name for name in drifts if name not in layers] + list(layers)
    worst = max(drifts.values(), key=lambda d: d.share)
    cells = [{"layer": name, "share": drifts[name].share if name in drifts else 0.0,
              "colour": strip_colour(drifts[name].share if name in drifts else 0.0,
                                     worst.share)} for name in order]
    return {"strip": cells, "strip_worst": worst.layer}


def render_html(report: ReportData, cache: Cache | None = None) -> str:
    """The page; with ``cache``, an identical report (same numbers and images) is reused."""
    data = report.to_dict()
    key = None
    if cache is not None and cache.enabled:
        visuals = {name: v.digest() for name, v in sorted(report.visuals.items())}
        key = JobKeys.html(json.dumps(data, sort_keys=True), visuals)
        page = cache.read(key, "report.html", lambda path: path.read_text(encoding="utf-8"))
        if isinstance(page, str):
            return page
    if cache is not None and cache.enabled and _ENV.bytecode_cache is None:
        # Compiling the template is a tenth of a second: a warm run loads it compiled.
        folder = cache.root / "templates"
        folder.mkdir(parents=True, exist_ok=True)
        _ENV.bytecode_cache = jinja2.FileSystemBytecodeCache(str(folder))
    page = _ENV.get_template("report.html.j2").render(data=data, charts=_target_charts(report))
    if key is not None and cache is not None:
        cache.put_text(key, "report.html", page)
    return page
