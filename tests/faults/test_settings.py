"""One validation for limits and configuration, shared by the command line, ``[tool.qcheck]``
and the API: NaN, infinite, zero or negative limits are usage errors (exit 2) naming the value
and the valid range, found before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

import qcheck
from qcheck.errors import UsageError
from tests.faults.conftest import one_line_error, run_cli


@pytest.mark.parametrize("value", ["inf", "1e999", "nan", "-1", "0", "-inf"])
@pytest.mark.parametrize("option", ["--max-delta-e", "--max-delta-e-p95", "--max-channel-bias"])
def test_bad_limits_on_the_command_line(option: str, value: str, enhancer_path: Path,
                                        tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    code, _, err = run_cli(capsys, "check", str(enhancer_path), "--out", str(tmp_path / "r"),
                           f"{option}={value}")
    assert code == 2
    line = one_line_error(err)
    assert option in line and value in line and "finite" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("setting", "named"), [
    ("max_delta_e = nan", "max_delta_e"),
    ("max_delta_e = inf", "max_delta_e"),
    ("max_delta_e = -1", "max_delta_e"),
    ("max_channel_bias = 0", "max_channel_bias"),
    ("min_sqnr_db = nan", "min_sqnr_db"),
    ("tolerance_relative = -0.5", "tolerance_relative"),
    ("tolerance_absolute = inf", "tolerance_absolute"),
])
def test_bad_limits_in_the_config(setting: str, named: str, enhancer_path: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.qcheck]\n{setting}\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "check", str(enhancer_path), "--out", "r")
    assert code == 2
    line = one_line_error(err)
    assert named in line and "pyproject.toml" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("document", ["tool = 5", "[tool]\nqcheck = 5", "tool = [1, 2]"])
def test_a_malformed_tool_table_is_a_usage_error(document: str, enhancer_path: Path,
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text(document + "\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "check", str(enhancer_path), "--out", "r")
    assert code == 2
    assert "pyproject.toml" in one_line_error(err)


@pytest.mark.parametrize("targets", ["", ",", " , "])
def test_empty_target_lists_are_refused_alike(targets: str, enhancer_path: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "check", str(enhancer_path), "--out", str(tmp_path / "r"),
                           "--targets", targets)
    assert code == 2
    assert "no targets given" in one_line_error(err)


@pytest.mark.parametrize("field", ["max_delta_e", "max_delta_e_p95", "max_channel_bias",
                                   "min_sqnr_db"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_the_api_refuses_the_same_limits(field: str, value: float) -> None:
    with pytest.raises(UsageError, match=field):
        qcheck.Thresholds(**{field: value})
