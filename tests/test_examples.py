"""The documented examples keep working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_export_script_example_runs() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "export_script.py")],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "shipped" in done.stdout


def test_ci_example_uses_real_flags() -> None:
    workflow = (ROOT / "examples" / "github-actions-qcheck.yml").read_text()
    for flag in ("--baseline", "--out", "--targets", "junit.xml", "--save-baseline"):
        assert flag in workflow
