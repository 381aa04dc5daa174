"""The verdict table of a ``report.json`` as Markdown: what a CI job writes to its summary page
(``python -m qcheck.report.summary REPORT_JSON``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from qcheck.report.text import number_text

__all__ = ["markdown_summary"]


def markdown_summary(report: dict[str, Any]) -> str:
    verdict = "passed" if report.get("passed") else "FAILED"
    lines = [f"### qcheck: {verdict}", "",
             f"`{report['model']['path']}`, {report['images']['evaluation']} evaluation "
             f"images ({report['images']['source']})", "",
             "| target | verdict | ΔE mean | ΔE p95 | failures |",
             "|---|---|---|---|---|"]
    for target in report["targets"]:
        metrics = target.get("metrics") or {}
        state = "error" if target.get("error") else ("pass" if target["passed"] else "FAIL")
        why = target.get("error") or "; ".join(target.get("failures") or []) or ""
        lines.append(f"| {target['name']} | {state} | "
                     f"{number_text(metrics.get('delta_e_mean'))} | "
                     f"{number_text(metrics.get('delta_e_p95'))} | {why.replace('|', '/')} |")
    baseline = report.get("baseline") or {}
    for regression in baseline.get("regressions") or []:
        lines.append(f"\nregressed: {regression['target']} {regression['metric']} "
                     f"{regression['baseline']:.4f} → {regression['now']:.4f}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m qcheck.report.summary REPORT_JSON", file=sys.stderr)
        return 2
    try:
        report = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {args[0]}: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(markdown_summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
