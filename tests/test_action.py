"""The GitHub Action's shell steps, run here as GitHub would run them (inputs substituted,
GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files), against a sample model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _run_action(tmp_path: Path, **given: str) -> tuple[int, str]:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    inputs.update(given)
    outputs, summary = tmp_path / "github_output", tmp_path / "summary.md"
    outputs.write_text("")
    env = {**os.environ, "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    code = 0
    for step in action["runs"]["steps"]:
        if step.get("shell") != "bash" or not _enabled(step.get("if"), inputs):
            continue
        found = dict(line.split("=", 1) for line in outputs.read_text().splitlines() if line)

        def value(match: re.Match[str], found: dict[str, str] = found) -> str:
            expression = match.group(1).strip()
            if expression.startswith("inputs."):
                return inputs[expression.removeprefix("inputs.")]
            if expression == "github.action_path":
                return str(ROOT)
            if expression == "steps.check.outputs.exit-code":
                return found["exit-code"]
            raise AssertionError(expression)

        script = re.sub(r"\$\{\{(.*?)\}\}", value, step["run"])
        done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        code = done.returncode
        if code:
            break
    return code, summary.read_text() if summary.exists() else ""


def _enabled(condition: Any, inputs: dict[str, str]) -> bool:
    if condition is None:
        return True
    match = re.fullmatch(r"inputs\.([\w-]+) == '(.*)'", str(condition))
    assert match, condition
    return inputs[match.group(1)] == match.group(2)


@pytest.mark.parametrize(("limit", "expected", "verdict"), [("2.0", 0, "| pass |"),
                                                             ("0.0001", 1, "| FAIL |")])
def test_the_action_checks_writes_the_summary_and_fails_the_job(
        tmp_path: Path, limit: str, expected: int, verdict: str) -> None:
    code, summary = _run_action(tmp_path, model=str(ROOT / "sample_models" / "healthy.keras"),
                                targets="tflite-fp16", install="false",
                                **{"max-delta-e": limit})
    assert code == expected
    assert "| target | verdict |" in summary and f"| tflite-fp16 {verdict}" in summary
    assert (tmp_path / "qcheck-report" / "report.json").exists()


def test_the_pre_commit_hook_runs_a_real_check_command() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["entry"] == "qcheck check" and "--baseline" in hook["args"]
    from qcheck.cli.parser import build_parser

    build_parser().parse_args(["check", "model.keras", *hook["args"]])  # every flag is real
