"""Models with custom layers are first-class in every command: fixes that re-save the model
keep the user's layers loadable, and ``zoo``, ``fix``, ``plan`` and ``convert`` take the same
explicit opt-in as ``check``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.faults.conftest import one_line_error, run_cli
from tests.field_models.test_custom_code import CUSTOM


@pytest.fixture(scope="module")
def nafnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.field_models.generators import nafnet_denoiser

    path = tmp_path_factory.mktemp("nafnet") / "nafnet.keras"
    nafnet_denoiser().save(path)
    return path


@pytest.fixture(scope="module")
def generator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.field_models.generators import instance_norm_generator

    path = tmp_path_factory.mktemp("generator") / "generator.keras"
    instance_norm_generator().save(path)
    return path


def test_equalization_is_verified_on_a_model_with_custom_layers(
        nafnet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The equalized copy of a SimpleGate model is re-saved and loaded with the user's file
    (it used to be refused: "it references Python module 'qcheck_custom_objects'")."""
    out = tmp_path / "r"
    code, _, err = run_cli(capsys, "check", str(nafnet), "--custom-objects", str(CUSTOM),
                           "--targets", "onnx-int8", "--no-readiness", "--out", str(out))
    assert code in (0, 1), err
    (target,) = json.loads((out / "report.json").read_text())["targets"]
    equalized = [s for s in target["suggestions"] if s["action"] == "equalize_channels"]
    assert equalized, target["suggestions"]
    for suggestion in equalized:
        assert suggestion["verified"] is not None, suggestion["verified_note"]


def test_zoo_takes_the_opt_in_as_a_flag_and_as_a_key(nafnet: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(nafnet, folder / "nafnet.keras")
    refused, _, _ = run_cli(capsys, "zoo", str(folder), "--out", str(tmp_path / "a"))
    assert refused == 2  # without the opt-in the model is refused, naming the flag zoo takes
    row = json.loads((tmp_path / "a" / "zoo.json").read_text())["models"][0]
    assert "--custom-objects" in row["error"]
    code, _, err = run_cli(capsys, "zoo", str(folder), "--custom-objects", str(CUSTOM),
                           "--targets", "tflite-fp16", "--out",
                           str(tmp_path / "b"))
    assert code == 0, err
    shutil.copy(CUSTOM, folder / "layers.py")
    (folder / "qcheck-zoo.toml").write_text(
        '[defaults]\ncustom_objects = "layers.py"\ntargets = ["onnx-fp16"]\n\n'
        '[[model]]\npath = "nafnet.keras"\n')
    code, _, err = run_cli(capsys, "zoo", str(folder), "--out", str(tmp_path / "c"))
    assert code == 0, err
    assert "unknown key" not in err


def test_convert_and_fix_take_the_opt_in(nafnet: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    refused, _, err = run_cli(capsys, "convert", str(nafnet), "--target", "tflite-int8", "-o",
                              str(tmp_path / "a.tflite"))
    assert refused == 2 and "--custom-objects" in one_line_error(err)
    code, _, err = run_cli(capsys, "convert", str(nafnet), "--target", "tflite-int8", "-o",
                           str(tmp_path / "a.tflite"), "--custom-objects", str(CUSTOM))
    assert code == 0 and (tmp_path / "a.tflite").stat().st_size > 0, err
    code, _, err = run_cli(capsys, "fix", str(nafnet), "--target", "onnx-int8",
                           "--custom-objects", str(CUSTOM), "-o", str(tmp_path / "fixed"))
    assert code == 0, err
    assert (tmp_path / "fixed" / "onnx-int8.onnx").exists()


def test_a_minus_one_to_one_model_is_not_called_off_centre(generator: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    """−1:1 pixels are zero-centred: no input_range finding says otherwise."""
    out = tmp_path / "r"
    code, _, err = run_cli(capsys, "check", str(generator), "--custom-objects", str(CUSTOM),
                           "--input-range", "-1:1", "--targets", "tflite-fp16",
                           "--analyze-all", "--no-readiness", "--out", str(out))
    assert code in (0, 1), err
    findings = json.loads((out / "report.json").read_text())["findings"]
    assert [f for f in findings if f["cause"] == "input_range"] == []


def test_int16_activations_keep_the_ops_16x8_cannot_run_float(
        generator: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Instance norm lowers to NEG and SQUARE, which TFLite cannot quantize to 16x8 ("not yet
    supported for op: 'NEG'"): those ops stay float, the rest is 16x8, and the suggestion says
    which ops were kept float instead of failing."""
    out = tmp_path / "r"
    code, _, err = run_cli(capsys, "check", str(generator), "--custom-objects", str(CUSTOM),
                           "--input-range", "-1:1", "--targets", "tflite-int8,tflite-int16x8",
                           "--analyze-all", "--no-readiness", "--out", str(out))
    assert code in (0, 1), err
    targets = {t["name"]: t for t in json.loads((out / "report.json").read_text())["targets"]}
    assert targets["tflite-int16x8"]["error"] is None
    wide = next(s for s in targets["tflite-int8"]["suggestions"]
                if s["action"] == "int16_activations")
    assert wide["verified"] is not None, wide["verified_note"]
    assert "kept float" in wide["reason"] and "NEG" in wide["reason"] \
        and "SQUARE" in wide["reason"]
