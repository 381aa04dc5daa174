"""[tool.qcheck] configuration and the Python API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import qcheck
from qcheck.cli import main
from qcheck.config import load_config
from qcheck.errors import UsageError


def test_config_reads_known_keys_and_warns_on_unknown(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.qcheck]\ntargets = ["tflite-int8"]\nmax-delta-e = 1.5\n'
                         'calib = "images"\nmax_dleta_e_p95 = 3\n')
    config = load_config(pyproject)
    assert config.targets == ("tflite-int8",)
    assert config.max_delta_e == 1.5
    assert config.calib == str((tmp_path / "images").resolve())
    err = capsys.readouterr().err
    assert "max_dleta_e_p95" in err and "warning" in err


def test_config_rejects_wrong_types(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.qcheck]\nmax_delta_e = "big"\n')
    with pytest.raises(UsageError, match="must be a number"):
        load_config(pyproject)


def test_limits_and_tolerances_come_from_flags_then_file_then_defaults() -> None:
    """One rule for ``check``, ``plan`` and every model of ``qcheck zoo``."""
    from qcheck.config import FileConfig
    from qcheck.limits import Thresholds
    from qcheck.report.baseline import Tolerances

    config = FileConfig(max_delta_e=1.0, max_delta_e_p95=3.0, min_sqnr_db=30.0,
                        tolerance_db=0.5)
    limits = config.thresholds(max_delta_e=0.5, max_channel_bias=None)
    assert (limits.max_delta_e, limits.max_delta_e_p95, limits.min_sqnr_db) == (0.5, 3.0, 30.0)
    assert limits.max_channel_bias == Thresholds().max_channel_bias
    assert limits.max_latency_ms is None
    assert config.tolerances() == Tolerances(db=0.5)
    assert FileConfig().thresholds() == Thresholds() and FileConfig().tolerances() == Tolerances()


def test_command_line_wins_over_config(enhancer_path: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.qcheck]\ntargets = ["onnx-fp16"]\nmax_delta_e = 0.0001\n')
    monkeypatch.chdir(tmp_path)
    assert main(["check", str(enhancer_path), "--out", "a", "--quiet"]) == 1  # config threshold
    first = json.loads((tmp_path / "a" / "report.json").read_text())
    assert [t["name"] for t in first["targets"]] == ["onnx-fp16"]
    assert first["thresholds"]["max_delta_e"] == 0.0001
    code = main(["check", str(enhancer_path), "--out", "b", "--quiet",
                 "--targets", "tflite-fp32", "--max-delta-e", "2.5"])
    second = json.loads((tmp_path / "b" / "report.json").read_text())
    assert code == 0
    assert [t["name"] for t in second["targets"]] == ["tflite-fp32"]
    assert second["thresholds"]["max_delta_e"] == 2.5
    capsys.readouterr()


def test_api_accepts_an_in_memory_model_and_arrays(enhancer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    calib = (rng.random((6, 40, 40, 3)) * 255).astype(np.uint8)
    evaluation = rng.random((4, 32, 32, 3)).astype(np.float32)
    report = qcheck.check(enhancer, calib=calib, eval=list(evaluation),
                          targets=["tflite-int8", "onnx-fp16"])
    assert report.images.calibration == 6 and report.images.evaluation == 4
    assert report.target("tflite-int8").metrics.delta_e_mean is not None
    assert report.model.path.startswith("<in-memory")
    folder = report.write(tmp_path / "out")
    assert (folder / "artifacts" / "tflite-int8.tflite").exists()
    with pytest.raises(KeyError, match="onnx-fp16"):
        report.target("onnx-int8")


def test_api_convert_writes_the_file(enhancer_path: Path, tmp_path: Path) -> None:
    path = qcheck.convert(enhancer_path, "onnx-int8", out=tmp_path / "m.onnx")
    import onnx

    model = onnx.load(str(path))
    assert any(node.op_type == "QuantizeLinear" for node in model.graph.node)


def test_options_objects_and_keyword_arguments_are_one_thing(enhancer_path: Path) -> None:
    """``settings=``/``images=``/``run=`` and the keyword arguments they replace build the same
    check; giving both for one concern is a usage error naming them."""
    import numpy as np

    from qcheck.errors import UsageError
    from qcheck.settings import ImageSources, ModelSettings, RunSwitches

    pixels = np.random.default_rng(3).random((6, 32, 32, 3), dtype=np.float32)
    loose = qcheck.check(str(enhancer_path), pixels[:3], pixels[3:], ["tflite-int8"],
                         input_range="0:1", analysis=False, readiness=False)
    grouped = qcheck.check(str(enhancer_path), targets=["tflite-int8"],
                           settings=ModelSettings.build("0:1"),
                           images=ImageSources(pixels[:3], pixels[3:]),
                           run=RunSwitches(analysis=False, readiness=False))
    assert grouped.target("tflite-int8").metrics == loose.target("tflite-int8").metrics
    assert grouped.images.to_dict() == loose.images.to_dict()
    assert grouped.target("tflite-int8").readiness is None
    for mixed in ({"run": RunSwitches(), "analysis": False},
                  {"settings": ModelSettings(), "input_range": "0:255"},
                  {"images": ImageSources(), "calib": pixels}):
        with pytest.raises(UsageError, match="not both"):
            qcheck.check(str(enhancer_path), targets=["tflite-fp16"], **mixed)
