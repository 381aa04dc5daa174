"""``junit.xml``: one test case per target, so any CI shows targets as tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from qcheck.report.baseline import judged_name
from qcheck.report.data import ReportData
from qcheck.results import Metrics, TargetResult

__all__ = ["render_junit"]


def render_junit(report: ReportData) -> str:
    """A test case per target; per target and output (``tflite-int8[depth]``) for a model
    with several outputs."""
    cases = [case for target in report.targets for case in _cases(target)]
    suite = ET.Element("testsuite", {
        "name": "qcheck",
        "tests": str(len(cases)),
        "failures": str(sum(1 for c in cases if not c.passed and c.error is None)),
        "errors": str(sum(1 for c in cases if c.error is not None)),
        "time": f"{sum(t.seconds for t in report.targets):.3f}",
    })
    for target in cases:
        case = ET.SubElement(suite, "testcase", {
            "classname": f"qcheck.{report.model.path}",
            "name": target.name,
            "time": f"{target.seconds:.3f}",
        })
        if target.error is not None:
            ET.SubElement(case, "error", {"message": target.error}).text = target.error
        elif not target.passed:
            message = "; ".join(target.failures) or "target failed"
            ET.SubElement(case, "failure", {"message": message}).text = message
        values = target.metrics.to_dict()
        shown = {k: v for k, v in values.items() if v is not None}
        if shown:
            ET.SubElement(case, "system-out").text = " ".join(f"{k}={v}" for k, v in
                                                              shown.items())
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")


@dataclass(frozen=True)
class _Case:
    name: str
    passed: bool
    error: str | None
    failures: tuple[str, ...]
    metrics: Metrics
    seconds: float


def _cases(target: TargetResult) -> list[_Case]:
    if not target.outputs or target.error is not None:
        return [_Case(target.name, target.passed, target.error, target.failures, target.metrics,
                      target.seconds)]
    share = target.seconds / len(target.outputs)
    return [_Case(judged_name(target.name, o.name), o.passed, None, o.failures, o.metrics,
                  share) for o in target.outputs]
