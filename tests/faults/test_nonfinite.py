"""NaN and infinity never pass: in the float model they are bad input (exit 2, naming the
images); in a target's outputs they fail it with ``nonfinite_fraction`` and a ``nonfinite`` tag;
every report renders."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import qcheck
from tests.faults.conftest import by_name, one_line_error, report, run_cli


@pytest.fixture(scope="module")
def nan_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model whose own output is NaN: a batch norm with a negative moving variance."""
    import keras

    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(3, 1, name="mix")(inputs)
    outputs = keras.layers.BatchNormalization(name="norm")(x)
    model = keras.Model(inputs, outputs)
    gamma, beta, mean, variance = model.get_layer("norm").get_weights()
    model.get_layer("norm").set_weights([gamma, beta, mean, variance - np.array([2, 0, 0])])
    path = tmp_path_factory.mktemp("nan") / "nan_model.keras"
    model.save(path)
    return path


def test_a_float_model_with_nan_outputs_is_bad_input(nan_model_path: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "check", str(nan_model_path), "--out", str(tmp_path / "r"),
                           "--targets", "tflite-fp16")
    assert code == 2
    line = one_line_error(err)
    assert "not finite" in line and "bundled/" in line  # names the images
    assert not (tmp_path / "r" / "report.json").exists()


def test_nan_in_a_target_fails_it_and_every_report_renders(enhancer_path: Path, tmp_path: Path,
                                                          inject_fault: Any,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    inject_fault("onnx-fp16:nan")
    out = tmp_path / "r"
    code, _, _ = run_cli(capsys, "check", str(enhancer_path), "--out", str(out),
                         "--targets", "onnx-fp16,tflite-fp16")
    assert code == 1
    targets = by_name(report(out))
    bad = targets["onnx-fp16"]
    assert not bad["passed"] and bad["error"] is None
    assert bad["metrics"]["nonfinite_fraction"] > 0
    assert "nonfinite" in bad["artifacts_seen"]
    assert all(v is None or np.isfinite(v) for k, v in bad["metrics"].items()
               if not isinstance(v, dict))
    assert targets["tflite-fp16"]["passed"]
    assert targets["tflite-fp16"]["metrics"]["nonfinite_fraction"] == 0
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    assert "onnx-fp16" in (out / "report.html").read_text()


def test_the_api_never_passes_nan(enhancer_path: Path, inject_fault: Any) -> None:
    inject_fault("tflite-int8:nan")
    result = qcheck.check(str(enhancer_path), targets=["tflite-int8"], analysis=False)
    assert not result.passed
    assert not result.target("tflite-int8").passed


def test_a_classifier_with_nan_logits_fails(classifier_path: Path, tmp_path: Path,
                                           inject_fault: Any,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    inject_fault("tflite-fp16:nan")
    out = tmp_path / "r"
    code, _, _ = run_cli(capsys, "check", str(classifier_path), "--out", str(out),
                         "--targets", "tflite-fp16")
    assert code == 1
    target = by_name(report(out))["tflite-fp16"]
    assert not target["passed"]
    assert target["metrics"]["nonfinite_fraction"] > 0


def test_reports_render_whatever_metrics_are_missing(tmp_path: Path) -> None:
    """NaN, None and infinity in any metric: JSON stays valid, HTML and JUnit still render."""
    import json

    import converters
    from qcheck.report.core import Report
    from qcheck.results import Metrics, TargetResult
    from qcheck.types import ImageSummary, ModelInfo, TensorInfo

    nan, inf = float("nan"), float("inf")
    odd = Metrics(delta_e_mean=nan, delta_e_p95=None, delta_e_max=inf, psnr_db=inf, ssim=nan,
                  channel_bias={"r": nan, "g": inf, "b": 0.0}, chroma_share=None,
                  clipped_fraction=nan, nonfinite_fraction=nan)
    limits = qcheck.Thresholds()
    spec = converters.TARGETS["tflite-int8"]
    target = TargetResult(spec=spec, passed=not odd.failures(limits), metrics=odd,
                          failures=tuple(odd.failures(limits)))
    info = ModelInfo("m.keras", "0" * 64, (TensorInfo("image", (None, 8, 8, 3), "float32"),),
                     (TensorInfo("out", (None, 8, 8, 3), "float32"),))
    result = Report(model=info, images=ImageSummary(1, 1, "bundled"), thresholds=limits,
                    targets=(target,))
    assert not target.passed and not result.passed
    result.write(tmp_path / "r")
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    assert data["targets"][0]["metrics"]["delta_e_mean"] is None
    assert "tflite-int8" in (tmp_path / "r" / "report.html").read_text()
    assert "failures=\"1\"" in (tmp_path / "r" / "junit.xml").read_text()
