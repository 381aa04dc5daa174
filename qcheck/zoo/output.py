"""One combined report of a catalogue: each model's own report folder, ``zoo.json``, an HTML
index (a row per model × target) and one ``junit.xml`` with a test suite per model."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qcheck.errors import ExitCode
from qcheck.report.files import write_folder
from qcheck.report.junit import render_junit
from qcheck.report.text import number_text
from qcheck.results import BaselineResult
from qcheck.zoo.manifest import ZooModel
from qcheck.zoo.units import UnitResult

__all__ = ["ModelOutcome", "combine", "write_zoo"]

ZOO_SCHEMA = "qcheck.zoo/1"


@dataclass(frozen=True)
class ModelOutcome:
    """One model's checked targets (its units' reports merged), or why it has none."""

    model: ZooModel
    report: Any = None
    error: str | None = None
    exit_code: int = 0

    def rows(self) -> list[dict[str, Any]]:
        if self.report is None:
            return [{"model": self.model.name, "target": target, "passed": False,
                     "error": self.error, "exit_code": self.exit_code, "delta_e_mean": None,
                     "delta_e_p95": None, "size_bytes": None, "report": None}
                    for target in self.model.targets]
        return [{"model": self.model.name, "target": t.name, "passed": t.passed,
                 "error": t.error, "exit_code": self.exit_code,
                 "delta_e_mean": t.metrics.delta_e_mean, "delta_e_p95": t.metrics.delta_e_p95,
                 "size_bytes": t.size_bytes, "report": f"{self.model.name}/report.html"}
                for t in self.report.targets]


def combine(models: list[ZooModel], results: list[UnitResult]) -> list[ModelOutcome]:
    outcomes = []
    for model in models:
        mine = [r for r in results if r.unit.model.name == model.name and not r.unit.prepare]
        failed = next((r for r in mine if r.report is None), None)
        if failed is None:  # a failed prepare shows in the units that needed it
            failed = next((r for r in results if r.unit.model.name == model.name
                           and r.unit.prepare and r.error), None)
        if failed is not None:
            outcomes.append(ModelOutcome(model, error=failed.error, exit_code=failed.exit_code))
            continue
        report = _merged([r.report for r in mine])
        outcomes.append(ModelOutcome(model, report, exit_code=int(report.exit_code)))
    return outcomes


def _merged(reports: list[Any]) -> Any:
    first = reports[0]
    if len(reports) == 1:
        return first
    baselines = [r.baseline for r in reports if r.baseline is not None]
    baseline = None if not baselines else BaselineResult(
        baselines[0].path, tuple(x for b in baselines for x in b.regressions),
        tuple(dict.fromkeys(n for b in baselines for n in b.notes)))
    return replace(first, targets=tuple(t for r in reports for t in r.targets),
                   artifacts={k: v for r in reports for k, v in r.artifacts.items()},
                   visuals={k: v for r in reports for k, v in r.visuals.items()},
                   fixes={k: v for r in reports for k, v in r.fixes.items()},
                   baseline=baseline)


def write_zoo(out: Path, outcomes: list[ModelOutcome], summary: dict[str, Any]) -> None:
    """Each model's report under ``out/<model>/``, then the combined files."""
    for outcome in outcomes:
        if outcome.report is not None:
            outcome.report.write(out / outcome.model.name)
    rows = [row for outcome in outcomes for row in outcome.rows()]
    document = {"schema": ZOO_SCHEMA, **summary,
                "passed": all(o.exit_code == 0 for o in outcomes),
                "models": [{"name": o.model.name, "path": o.model.path,
                            "exit_code": o.exit_code, "error": o.error,
                            "report": f"{o.model.name}/report.json"
                            if o.report is not None else None} for o in outcomes],
                "rows": rows}
    write_folder(out, {"zoo.json": json.dumps(document, indent=1),
                       "index.html": _index(rows, summary), "junit.xml": _junit(outcomes)})


def catalogue_exit(outcomes: list[ModelOutcome]) -> ExitCode:
    """The worst model's exit code."""
    return ExitCode(max((o.exit_code for o in outcomes), default=0))


_INDEX = """<!doctype html><html><head><meta charset="utf-8"><title>qcheck zoo</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border-bottom:1px solid #ddd;padding:.3em .8em;text-align:left}.pass{color:#1a7f37}
.fail{color:#d1242f}</style></head><body><h1>qcheck zoo: {{ verdict }}</h1>
<p>{{ models }} models, {{ rows|length }} model × target jobs, {{ seconds }} s on {{ engine }}.</p>
<table><tr><th>model</th><th>target</th><th>verdict</th><th>ΔE mean</th><th>ΔE p95</th>
<th>size</th></tr>{% for row in rows %}<tr><td>{% if row.report %}<a href="{{ row.report }}">
{{ row.model }}</a>{% else %}{{ row.model }}{% endif %}</td><td>{{ row.target }}</td>
<td class="{{ 'pass' if row.passed else 'fail' }}">{{ row.verdict }}</td><td>{{ row.mean }}</td>
<td>{{ row.p95 }}</td><td>{{ row.size }}</td></tr>{% endfor %}</table></body></html>"""


def _index(rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    from jinja2 import Environment

    shown = [{**row, "verdict": "pass" if row["passed"] else (row["error"] or "FAIL"),
              "mean": number_text(row["delta_e_mean"]), "p95": number_text(row["delta_e_p95"]),
              "size": "–" if row["size_bytes"] is None else f"{row['size_bytes'] / 1024:.1f} KiB"}
             for row in rows]
    passed = all(row["passed"] for row in rows)
    return Environment(autoescape=True).from_string(_INDEX).render(
        rows=shown, verdict="pass" if passed else "FAIL", seconds=summary["seconds"],
        models=len({row["model"] for row in rows}), engine=summary["engine"]["kind"])


def _junit(outcomes: list[ModelOutcome]) -> str:
    root = ET.Element("testsuites")
    for outcome in outcomes:
        if outcome.report is not None:
            suite = ET.fromstring(render_junit(outcome.report).split("\n", 1)[1]).find(
                "testsuite")
            assert suite is not None
        else:
            suite = ET.Element("testsuite", {"tests": "1", "failures": "0", "errors": "1"})
            case = ET.SubElement(suite, "testcase", {"classname": "qcheck.zoo", "name": "load"})
            ET.SubElement(case, "error", {"message": outcome.error or ""}).text = outcome.error
        suite.set("name", outcome.model.name)
        root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")
