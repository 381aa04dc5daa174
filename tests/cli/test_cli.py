"""The command line end to end: exit codes, report.json keys, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import converters
from qcheck.cli import main

REPORT_KEYS = {"schema", "qcheck_version", "passed", "model", "images", "findings", "thresholds",
               "targets", "baseline"}
MODEL_KEYS = {"path", "sha256", "inputs", "outputs"}
# The contract's four, and (added with --input-size) the size the model was fed at.
IMAGES_KEYS = {"calibration", "evaluation", "source", "skipped", "input_size"}
TARGET_KEYS = {"name", "format", "precision", "artifact", "size_bytes", "passed", "error",
               "seconds", "metrics", "artifacts_seen", "attribution", "suggestions"}
METRIC_KEYS = {"delta_e_mean", "delta_e_p95", "delta_e_max", "psnr_db", "ssim", "channel_bias",
               "chroma_share", "clipped_fraction"}
# The contract's three, and (added with the structure issue) every other limit in force.
THRESHOLD_KEYS = {"max_delta_e", "max_delta_e_p95", "max_channel_bias", "min_sqnr_db",
                  "min_class_agreement", "max_latency_ms", "max_size_kb"}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_one_line_error(err: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err


def test_targets_lists_all_ten(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "targets")
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines() if line and not line.startswith("(")]
    assert listed == list(converters.TARGETS)
    assert len(listed) == 10


@pytest.mark.compat
def test_check_all_ten_targets_writes_the_contract(enhancer_path: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    code, stdout, _ = _run(capsys, "check", str(enhancer_path), "--targets",
                           ",".join(converters.TARGETS), "--out", str(out))
    report = json.loads((out / "report.json").read_text())
    assert code == 0, stdout
    assert set(report) == REPORT_KEYS
    assert report["schema"] == "qcheck.report/1"
    assert set(report["model"]) == MODEL_KEYS
    assert set(report["images"]) == IMAGES_KEYS
    assert report["images"]["source"] == "bundled"
    assert set(report["thresholds"]) == THRESHOLD_KEYS
    assert [t["name"] for t in report["targets"]] == list(converters.TARGETS)
    for target in report["targets"]:
        assert set(target) >= TARGET_KEYS
        assert set(target["metrics"]) >= METRIC_KEYS
        assert set(target["metrics"]["channel_bias"]) == {"r", "g", "b"}
        assert target["error"] is None
        assert (out / target["artifact"]).stat().st_size == target["size_bytes"]
        assert target["format"] in ("tflite", "onnx")
    assert (out / "report.html").read_text().startswith("<!doctype html>")
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None and len(suite.findall("testcase")) == 10


def test_threshold_exceeded_exits_1(enhancer_path: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    code, stdout, _ = _run(capsys, "check", str(enhancer_path), "--targets", "tflite-int8",
                           "--max-delta-e", "0.001", "--out", str(out))
    assert code == 1
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is False
    assert report["targets"][0]["passed"] is False
    assert "delta_e_mean" in stdout
    failure = ET.parse(out / "junit.xml").getroot().find("testsuite/testcase/failure")
    assert failure is not None and "delta_e_mean" in failure.get("message", "")


def test_quiet_prints_nothing_on_success(enhancer_path: Path, tmp_path: Path) -> None:
    # A real process, so native libraries writing straight to fd 1 and 2 would be caught too.
    done = subprocess.run(
        [sys.executable, "-m", "qcheck.cli", "check", str(enhancer_path), "--targets",
         "tflite-fp16", "--out", str(tmp_path / "r"), "--quiet"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


@pytest.mark.parametrize("argv", [
    ["check", "{model}", "--targets", "tflite-int4"],
    ["check", "{model}", "--input-range", "0:2"],
    ["check", "{model}", "--max-delta-e", "-1"],
    ["check", "{missing}"],
    ["check", "{model}", "--calib", "{missing}"],
    ["convert", "{model}", "--target", "nope", "-o", "{tmp}/x.tflite"],
    ["frobnicate"],
])
def test_usage_errors_exit_2_with_one_line(argv: list[str], enhancer_path: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    filled = [a.format(model=enhancer_path, missing=tmp_path / "absent", tmp=tmp_path)
              for a in argv]
    code, _, err = _run(capsys, *filled, "--out", str(tmp_path / "o")) if argv[0] == "check" \
        else _run(capsys, *filled)
    assert code == 2
    _assert_one_line_error(err)


def test_unknown_target_error_names_the_valid_ones(enhancer_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = _run(capsys, "check", str(enhancer_path), "--targets", "tflite-int4")
    assert "tflite-int4" in err and "onnx-int8-per-tensor" in err


def test_out_pointing_at_a_file_exits_2_and_leaves_it(enhancer_path: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "notes.txt"
    existing.write_text("mine")
    code, _, err = _run(capsys, "check", str(enhancer_path), "--out", str(existing))
    assert code == 2
    _assert_one_line_error(err)
    assert existing.read_text() == "mine"


def test_random_bytes_named_keras_exit_2(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "model.keras"
    bogus.write_bytes(bytes(range(256)) * 4)
    code, _, err = _run(capsys, "check", str(bogus), "--out", str(tmp_path / "o"))
    assert code == 2
    _assert_one_line_error(err)


def test_classifier_gets_tensor_metrics_and_null_colour(classifier_path: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    code, _, _ = _run(capsys, "check", str(classifier_path), "--targets", "tflite-int8,onnx-fp16",
                      "--out", str(out))
    report = json.loads((out / "report.json").read_text())
    assert code in (0, 1)
    for target in report["targets"]:
        metrics = target["metrics"]
        assert metrics["delta_e_mean"] is None and metrics["channel_bias"] is None
        assert metrics["sqnr_db"] is not None and metrics["max_abs_error"] is not None
        assert 0.0 <= metrics["top1_agreement"] <= 1.0
        assert target["error"] is None


def test_convert_writes_one_artifact_and_never_overwrites(enhancer_path: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    target = tmp_path / "model_int8.tflite"
    code, _out, _ = _run(capsys, "convert", str(enhancer_path), "--target", "tflite-int8",
                        "-o", str(target))
    assert code == 0 and target.read_bytes()[4:8] == b"TFL3"
    before = target.read_bytes()
    code, _, err = _run(capsys, "convert", str(enhancer_path), "--target", "tflite-int8",
                        "-o", str(target))
    assert code == 2
    _assert_one_line_error(err)
    assert target.read_bytes() == before


def test_an_internal_error_is_still_one_line(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom\ndetails")

    monkeypatch.setattr("qcheck.cli.commands.run_targets", broken)
    code = main(["targets"])
    err = capsys.readouterr().err
    assert code == 3
    assert err.count("\n") == 1 and "internal error (RuntimeError: details)" in err


def test_negative_ranges_are_accepted_as_typed(enhancer_path: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "check", str(enhancer_path), "--input-range", "-1:1",
                        "--targets", "tflite-fp16", "--out", str(tmp_path / "r"), "--quiet")
    assert code in (0, 1), err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["targets"][0]["error"] is None


def test_a_refused_model_leaves_no_output_folder(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "bogus.keras"
    bogus.write_bytes(b"not a model" * 10)
    for command in (["check", str(bogus)], ["fix", str(bogus), "--target", "tflite-int8"],
                    ["plan", str(bogus), "--target", "tflite-int8"]):
        out = tmp_path / "new" / "report"
        code, _, err = _run(capsys, *command, "--out", str(out))
        assert code == 2
        _assert_one_line_error(err)
        assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    assert _run(capsys, "check", str(bogus), "--out", str(kept))[0] == 2
    assert (kept / "notes.txt").read_text() == "mine"
