"""The ``qcheck`` command leaves without the interpreter's teardown, yet runs the exit
handlers, flushes what it printed and passes the exit code on."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path


def _run(code: str) -> subprocess.CompletedProcess[str]:
    buffered = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False, env=buffered)


def test_exit_handlers_run_and_piped_output_is_flushed() -> None:
    done = _run("import atexit, sys\n"
                "atexit.register(print, 'exit handler ran')\n"
                "sys.argv = ['qcheck', '--version']\n"
                "from qcheck.cli import run\n"
                "run()\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("qcheck ")
    assert done.stdout.splitlines()[-1] == "exit handler ran"


def test_the_exit_code_and_the_error_line_pass_through(tmp_path: Path) -> None:
    missing = tmp_path / "missing.keras"
    done = subprocess.run([sys.executable, "-m", "qcheck.cli", "check", str(missing)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and str(missing) in done.stderr


def test_the_installed_command_exits_this_way() -> None:
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert [entry.value for entry in scripts if entry.name == "qcheck"] == ["qcheck.cli:run"]
