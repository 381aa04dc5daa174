"""``report.html``: one self-contained page (no network), rendered with Jinja2."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jinja2

if TYPE_CHECKING:
    from qcheck.report.core import Report

__all__ = ["render_html"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("qcheck.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_html(report: Report) -> str:
    template = _ENV.get_template("report.html.j2")
    return template.render(report=report, data=report.to_dict(), visuals=report.visuals)
