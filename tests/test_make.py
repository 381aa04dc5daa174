"""What ``make`` does before the commands the README gives (dry runs: nothing is installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _planned(target: str, *, touched: str | None = None) -> list[str]:
    """The commands ``make target`` would run: everything (``-B``), or only what a change to
    ``touched`` makes out of date."""
    flags = ["-W", touched] if touched else ["-B"]
    done = subprocess.run(["make", "-n", *flags, target], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout.splitlines()


@pytest.mark.parametrize("target", ["check", "test", "test-all", "bench", "bench-zoo", "demo",
                                    "test-compat"])
def test_every_run_target_compiles_qcheck_before_it_runs(target: str) -> None:
    # An editable install has no bytecode, and where writing it is off
    # (PYTHONDONTWRITEBYTECODE) every process of every run compiled qcheck again.
    lines = _planned(target)
    compiled = [i for i, line in enumerate(lines) if "-m compileall" in line]
    assert compiled, lines
    assert "qcheck converters" in lines[compiled[0]]
    assert compiled[0] < len(lines) - 2, "the run itself comes after the bytecode"


def test_a_changed_module_is_compiled_again_and_nothing_is_reinstalled() -> None:
    lines = _planned("check", touched="qcheck/pipeline.py")
    assert any("-m compileall" in line for line in lines), lines
    assert not any("pip install" in line for line in lines), lines
