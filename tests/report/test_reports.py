"""Reports and the CI gate: baselines, a self-contained HTML page, JUnit, progress."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from qcheck.cli import main
from sample_models.catalog import SAMPLES

HEALTHY = next(s for s in SAMPLES if s.name == "healthy").path
TRAP = next(s for s in SAMPLES if s.name == "per_tensor_trap").path
TARGETS = "tflite-int8,tflite-int8-per-tensor"


def _check(capsys: pytest.CaptureFixture[str], *argv: str) -> int:
    code = main(["check", *argv, "--quiet"])
    capsys.readouterr()
    return code


def test_baseline_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "baseline.json"
    assert _check(capsys, str(HEALTHY), "--targets", TARGETS, "--out", str(tmp_path / "a"),
                  "--save-baseline", str(baseline)) == 0
    stored = json.loads(baseline.read_text())
    assert set(stored["targets"]) == {"tflite-int8", "tflite-int8-per-tensor"}
    assert len(stored["targets"]["tflite-int8"]["outputs"]) == len(stored["images"])

    # The same model against its own baseline: nothing regressed.
    assert _check(capsys, str(HEALTHY), "--targets", TARGETS, "--out", str(tmp_path / "b"),
                  "--baseline", str(baseline)) == 0
    same = json.loads((tmp_path / "b" / "report.json").read_text())
    assert same["baseline"]["regressions"] == []

    # A worse artifact: exit 1, with each regression listed.
    assert _check(capsys, str(TRAP), "--targets", TARGETS, "--out", str(tmp_path / "c"),
                  "--baseline", str(baseline), "--no-analysis") == 1
    worse = json.loads((tmp_path / "c" / "report.json").read_text())
    regressed = {(r["target"], r["metric"]) for r in worse["baseline"]["regressions"]}
    assert ("tflite-int8-per-tensor", "delta_e_mean") in regressed
    for item in worse["baseline"]["regressions"]:
        assert item["now"] != item["baseline"]


def test_changed_outputs_with_steady_metrics_are_information(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "baseline.json"
    _check(capsys, str(HEALTHY), "--targets", "tflite-int8", "--out", str(tmp_path / "a"),
           "--save-baseline", str(baseline))
    document = json.loads(baseline.read_text())
    document["targets"]["tflite-int8"]["outputs"][0] = "0" * 16
    baseline.write_text(json.dumps(document))
    assert _check(capsys, str(HEALTHY), "--targets", "tflite-int8", "--out",
                  str(tmp_path / "b"), "--baseline", str(baseline)) == 0
    notes = json.loads((tmp_path / "b" / "report.json").read_text())["baseline"]["notes"]
    assert any("1 evaluation output(s) changed" in note for note in notes)


def test_a_tolerance_from_config_loosens_the_gate(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "baseline.json"
    _check(capsys, str(HEALTHY), "--targets", "tflite-int8", "--out", str(tmp_path / "a"),
           "--save-baseline", str(baseline))
    document = json.loads(baseline.read_text())
    document["targets"]["tflite-int8"]["metrics"]["delta_e_mean"] *= 0.5
    baseline.write_text(json.dumps(document))
    monkeypatch.chdir(tmp_path)
    assert _check(capsys, str(HEALTHY), "--targets", "tflite-int8", "--out", "b",
                  "--baseline", str(baseline)) == 1
    (tmp_path / "pyproject.toml").write_text("[tool.qcheck]\ntolerance_relative = 2.0\n")
    assert _check(capsys, str(HEALTHY), "--targets", "tflite-int8", "--out", "c",
                  "--baseline", str(baseline)) == 0


def test_baselines_never_overwrite_other_files(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    code = main(["check", str(HEALTHY), "--targets", "tflite-fp16", "--out", str(tmp_path / "o"),
                 "--save-baseline", str(notes), "--quiet"])
    assert code == 2 and "not a qcheck baseline" in capsys.readouterr().err
    assert notes.read_text() == '{"mine": true}'
    code = main(["check", str(HEALTHY), "--baseline", str(notes), "--out", str(tmp_path / "o")])
    assert code == 2 and "not a qcheck baseline" in capsys.readouterr().err


def test_html_report_is_self_contained_and_complete(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    _check(capsys, str(TRAP), "--targets", TARGETS, "--out", str(tmp_path / "r"))
    page = (tmp_path / "r" / "report.html").read_text()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    # No network: every image is inline, no external scripts, styles or links.
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script" not in page
    images = re.findall(r'<img src="data:image/png;base64,', page)
    assert len(images) >= 8  # bias and histogram per target, attribution, worst images
    for needle in ("tflite-int8-per-tensor", "attribution of tflite-int8-per-tensor",
                   "Worst evaluation",
                   "Suggestions", "per_channel_weights", "equalize_channels", "depthwise",
                   "Findings on the model"):
        assert needle in page, needle


def test_junit_has_one_case_per_target_and_failure_metrics(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _check(capsys, str(TRAP), "--targets", TARGETS, "--out", str(tmp_path / "r"),
           "--no-analysis")
    suite = ET.parse(tmp_path / "r" / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"tflite-int8", "tflite-int8-per-tensor"}
    assert cases["tflite-int8"].find("failure") is None
    failure = cases["tflite-int8-per-tensor"].find("failure")
    assert failure is not None and "delta_e_mean" in (failure.get("message") or "")
    assert suite.get("failures") == "1"


def test_progress_lines_off_a_terminal(tmp_path: Path, capfd: pytest.CaptureFixture[str]
                                       ) -> None:
    main(["check", str(HEALTHY), "--targets", "tflite-fp16", "--out", str(tmp_path / "r")])
    err = capfd.readouterr().err
    assert "qcheck: converting and running 1 target(s)" in err
