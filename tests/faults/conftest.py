"""Helpers for the fault-injection suite: real runs of tiny models, checked like a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qcheck.cli import main

ROOT = Path(__file__).resolve().parent.parent.parent


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_process(*argv: str, env: dict[str, str] | None = None, timeout: float = 300
                ) -> subprocess.CompletedProcess[str]:
    """``qcheck`` in a process of its own, as a CI job runs it."""
    return subprocess.run([sys.executable, "-m", "qcheck.cli", *argv], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})},
                          cwd=ROOT)


def report(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "report.json").read_text())


def by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in data["targets"]}


def one_line_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()
             and not line.startswith(("warning:", "qcheck: "))]  # progress is not an error
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def folder_state(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: what "intact" is compared against."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}
