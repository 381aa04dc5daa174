"""``junit.xml``: one test case per target, so any CI shows targets as tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from qcheck.report.data import ReportData

__all__ = ["render_junit"]


def render_junit(report: ReportData) -> str:
    failures = sum(1 for t in report.targets if not t.passed and t.error is None)
    errors = sum(1 for t in report.targets if t.error is not None)
    suite = ET.Element("testsuite", {
        "name": "qcheck",
        "tests": str(len(report.targets)),
        "failures": str(failures),
        "errors": str(errors),
        "time": f"{sum(t.seconds for t in report.targets):.3f}",
    })
    for target in report.targets:
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
