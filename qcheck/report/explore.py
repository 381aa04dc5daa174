"""``qcheck explore``: open Model Explorer on a report's artifact with its overlays loaded."""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from qcheck.errors import UsageError
from qcheck.report.explorer import EXPLORER_DIR

__all__ = ["ExplorerCommand", "explorer_command", "open_explorer"]


@dataclass(frozen=True)
class ExplorerCommand:
    target: str
    artifact: Path
    overlays: tuple[Path, ...]

    @property
    def argv(self) -> list[str]:
        argv = ["model-explorer", str(self.artifact),
                "--node_data_paths=" + ",".join(str(p) for p in self.overlays)]
        if self.artifact.suffix == ".onnx":  # ONNX needs its adapter extension
            argv.append("--extensions=model_explorer_onnx")
        return argv

    def __str__(self) -> str:
        return shlex.join(self.argv)


def explorer_command(report_dir: Path, target: str | None = None) -> ExplorerCommand:
    """The artifact and overlays of ``target`` (default: the first failing target with
    overlays, else the first with overlays) in a folder written by ``check --explorer``."""
    report_path = report_dir / "report.json"
    if not report_path.is_file():
        raise UsageError(f"no report.json in {report_dir} (write one with `qcheck check "
                         "MODEL --explorer --out DIR`)")
    try:
        targets = json.loads(report_path.read_text(encoding="utf-8"))["targets"]
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{report_path} is not a qcheck report") from None
    with_overlays = [t for t in targets
                     if list((report_dir / EXPLORER_DIR).glob(f"{t['name']}.*.json"))]
    if not with_overlays:
        raise UsageError(f"{report_dir} has no Model Explorer overlays; rerun "
                         "`qcheck check MODEL --explorer --out DIR`")
    names = [t["name"] for t in with_overlays]
    if target is None:
        failing = [t for t in with_overlays if not t["passed"]]
        chosen = (failing or with_overlays)[0]
    elif target in names:
        chosen = next(t for t in with_overlays if t["name"] == target)
    else:
        raise UsageError(f"--target {target!r} has no overlays here; choose one of: "
                         f"{', '.join(names)}")
    overlays = tuple(sorted((report_dir / EXPLORER_DIR).glob(f"{chosen['name']}.*.json")))
    return ExplorerCommand(chosen["name"], report_dir / chosen["artifact"], overlays)


def open_explorer(command: ExplorerCommand) -> bool:
    """Start Model Explorer (the ``explorer`` extra); ``False`` when it is not installed."""
    executable = shutil.which("model-explorer")
    if importlib.util.find_spec("model_explorer") is None or executable is None:
        return False
    subprocess.run([executable, *command.argv[1:]], check=False)
    return True
