"""Report stage: the typed ``Report`` and its JSON, HTML and JUnit renderings."""

from qcheck.report.core import Report

__all__ = ["Report"]
