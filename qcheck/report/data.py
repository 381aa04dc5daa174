"""The typed result of a check: verdicts, findings and the JSON of ``report.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from qcheck.errors import ExitCode
from qcheck.limits import Thresholds
from qcheck.outputs import OutputSpec
from qcheck.results import BaselineResult, Finding, TargetResult
from qcheck.types import REPORT_SCHEMA, ImageSummary, ModelInfo

__all__ = ["ReportData"]


@dataclass(frozen=True)
class ReportData:
    model: ModelInfo
    images: ImageSummary
    thresholds: Thresholds
    targets: tuple[TargetResult, ...]
    findings: tuple[Finding, ...] = ()
    output: OutputSpec | None = None  # what the output is, and how it was read
    baseline: BaselineResult | None = None
    version: str = ""
    # Serialized artifacts by target name; written under artifacts/ by ``write``.
    artifacts: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)
    # Extra per-target material for the HTML page (example images, histograms).
    visuals: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # The best verified fix of each failing target (``qcheck fix`` ships these).
    fixes: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # Where rendered pages may be reused from (the check's cache), if anywhere.
    cache: Any = field(default=None, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        regressed = bool(self.baseline and self.baseline.regressions)
        return all(t.passed for t in self.targets) and not regressed

    @property
    def exit_code(self) -> ExitCode:
        if any(t.error for t in self.targets):
            return ExitCode.CRASHED
        return ExitCode.OK if self.passed else ExitCode.FAILED

    def target(self, name: str) -> TargetResult:
        for result in self.targets:
            if result.name == name:
                return result
        raise KeyError(f"no target {name!r} in this report; it has "
                       f"{', '.join(t.name for t in self.targets)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "qcheck_version": self.version,
            "passed": self.passed,
            "model": self.model.to_dict(),
            "images": self.images.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
            "thresholds": self.thresholds.to_dict(),
            "targets": [{**t.to_dict(), **({"output": self.output.to_dict()}
                                           if self.output else {})} for t in self.targets],
            "baseline": self.baseline.to_dict() if self.baseline else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
