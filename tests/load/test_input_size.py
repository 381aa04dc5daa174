"""A model with no fixed input size runs at the size the app runs it at (``--input-size HxW``,
``input_size`` in ``[tool.qcheck]`` and zoo manifests); the report states it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.faults.conftest import one_line_error, run_cli


@pytest.fixture(scope="module")
def any_size_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    outputs = keras.layers.Add()([inputs, keras.layers.Conv2D(3, 3, padding="same")(x)])
    path = tmp_path_factory.mktemp("any-size") / "any_size.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def _input_shape(artifact: Path) -> list[int]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=artifact.read_bytes())
    return [int(n) for n in interpreter.get_input_details()[0]["shape"]]


def test_the_size_is_chosen_converted_at_and_reported(any_size_model: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    code, _, err = run_cli(capsys, "check", str(any_size_model), "--input-size", "48x40",
                           "--targets", "tflite-int8,onnx-fp16", "--no-analysis",
                           "--no-readiness", "--out", str(out))
    assert code in (0, 1), err
    report = json.loads((out / "report.json").read_text())
    assert report["images"]["input_size"] == [48, 40]
    assert _input_shape(out / "artifacts" / "tflite-int8.tflite") == [1, 48, 40, 3]
    import onnx

    graph = onnx.load(out / "artifacts" / "onnx-fp16.onnx").graph
    dims = [d.dim_value or d.dim_param for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [48, 40, 3]
    # Without the flag: 128×128, as before, and the report says so.
    default = tmp_path / "d"
    run_cli(capsys, "check", str(any_size_model), "--targets", "tflite-fp16", "--no-analysis",
            "--no-readiness", "--out", str(default))
    assert json.loads((default / "report.json").read_text())["images"]["input_size"] == [128, 128]


def test_the_size_comes_from_the_config_and_is_checked(any_size_model: Path, enhancer_path: Path,
                                                        tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.qcheck]\ninput_size = "24x32"\n')
    code, _, err = run_cli(capsys, "convert", str(any_size_model), "--target", "tflite-int8",
                           "-o", "a.tflite")
    assert code == 0, err
    assert _input_shape(tmp_path / "a.tflite") == [1, 24, 32, 3]
    for bad in ("0x5", "big", "64x", "100000x100000"):
        code, _, err = run_cli(capsys, "convert", str(any_size_model), "--target", "tflite-int8",
                               "--input-size", bad, "-o", "b.tflite")
        assert code == 2 and "--input-size" in one_line_error(err), bad
    # A model with a fixed size runs at its own size; another one is a usage error.
    code, _, err = run_cli(capsys, "convert", str(enhancer_path), "--target", "tflite-fp16",
                           "--input-size", "64x64", "-o", "c.tflite")
    assert code == 2 and "32×32" in one_line_error(err)
    assert np.all(np.array(_input_shape(tmp_path / "a.tflite")) > 0)


def test_a_model_that_cannot_be_traced_at_any_size_names_the_flag(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Keras's bilinear UpSampling2D needs a known size to be traced; the targets say so in
    one line and name --input-size, and with it the model converts."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.UpSampling2D(2, interpolation="bilinear")(x)
    path = tmp_path / "upsampler.keras"
    keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same")(x)).save(path)
    out = tmp_path / "r"
    code, _, err = run_cli(capsys, "check", str(path), "--targets", "tflite-int8,onnx-fp16",
                           "--no-analysis", "--no-readiness", "--out", str(out))
    assert code == 3, err
    for target in json.loads((out / "report.json").read_text())["targets"]:
        message = target["error"]
        assert "\n" not in message and len(message) < 400, message
        assert "UpSampling2D" in message and "--input-size HxW" in message, message
    fixed = tmp_path / "f"
    code, _, err = run_cli(capsys, "check", str(path), "--input-size", "64x64", "--targets",
                           "tflite-int8,onnx-fp16", "--no-analysis", "--no-readiness",
                           "--out", str(fixed))
    assert code in (0, 1), err
