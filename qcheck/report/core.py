"""``Report``: the result of a check, and how it is written to the output folder."""

from __future__ import annotations

import os
from pathlib import Path

from qcheck.report.data import ReportData
from qcheck.report.files import atomic_write, prepare_out_dir
from qcheck.report.html import render_html
from qcheck.report.junit import render_junit

__all__ = ["Report"]


class Report(ReportData):
    """What ``qcheck.check`` returns: the verdicts, and ``write`` for the output folder."""

    def write(self, out: str | os.PathLike[str]) -> Path:
        """Write report.json, report.html, junit.xml and artifacts/ into ``out``."""
        folder = prepare_out_dir(out)
        for name, content in self.artifacts.items():
            result = self.target(name)
            if result.artifact:
                atomic_write(folder / result.artifact, content)
        atomic_write(folder / "junit.xml", render_junit(self))
        atomic_write(folder / "report.html", render_html(self, self.cache))
        atomic_write(folder / "report.json", self.to_json())
        return folder
