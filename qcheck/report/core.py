"""``Report``: the result of a check, and how it is written to the output folder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import converters
from qcheck.report.data import ReportData
from qcheck.report.explorer import EXPLORER_DIR, explorer_files
from qcheck.report.files import ARTIFACTS_DIR, write_folder
from qcheck.report.html import render_html
from qcheck.report.junit import render_junit

__all__ = ["Report"]

# qcheck's own names in an output folder: an earlier run's artifacts of other targets go.
OWNED = (*(f"{folder}/{name}{spec.suffix}" for name, spec in converters.TARGETS.items()
           for folder in (ARTIFACTS_DIR, "unfixed")), f"{EXPLORER_DIR}/*.json")


class Report(ReportData):
    """What ``qcheck.check`` returns: the verdicts, and ``write`` for the output folder."""

    def files(self, *, explorer: bool = False) -> dict[str, bytes | str]:
        """report.json, report.html, junit.xml and artifacts/, by name in the folder; with
        ``explorer``, Model Explorer overlays of every attributed target too."""
        found: dict[str, bytes | str] = {}
        for name, content in self.artifacts.items():
            result = self.target(name)
            if result.artifact:
                found[result.artifact] = content
        if explorer:
            outputs = self.model.outputs
            found.update(explorer_files(self.targets, self.artifacts, self.model.layers,
                                        outputs[0].name if outputs else None))
        found["junit.xml"] = render_junit(self)
        found["report.html"] = render_html(self, self.cache)
        found["report.json"] = self.to_json()
        return found

    def write(self, out: str | os.PathLike[str],
              extra: Mapping[str, bytes | str] | None = None, *, explorer: bool = False
              ) -> Path:
        """Write the report (and ``extra`` files) into ``out`` as one unit: a failure leaves
        the previous report there whole. ``explorer`` adds the Model Explorer overlays."""
        folder = Path(out)
        write_folder(folder, {**self.files(explorer=explorer), **(extra or {})}, OWNED)
        return folder
