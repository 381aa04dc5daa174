"""Models with the user's own code: a compile config is ignored, custom layers and subclassed
models load with ``--custom-objects`` (an explicit opt-in) and are refused without it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import qcheck
from tests import tiny_models
from tests.faults.conftest import one_line_error, run_cli

CUSTOM = Path(__file__).parent / "custom_layers.py"


def _my_loss(y_true, y_pred):  # type: ignore[no-untyped-def]
    """A user's own loss: saved in the compile config, never needed to check the model."""
    import keras

    return keras.ops.mean(keras.ops.abs(y_true - y_pred)) * 2.0


def test_a_model_compiled_with_a_custom_loss_loads(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import keras

    model = keras.models.clone_model(tiny_models.build_enhancer(epochs=1))
    model.compile(optimizer="adam", loss=_my_loss, metrics=["mae"])
    path = tmp_path / "compiled.keras"
    model.save(path)
    code, _, err = run_cli(capsys, "check", str(path), "--targets", "tflite-fp16",
                           "--out", str(tmp_path / "r"))
    assert code == 0, err
    notes = [line for line in err.splitlines() if "note:" in line]
    assert len(notes) == 1 and "compile" in notes[0] and "loss" in notes[0]


@pytest.fixture(scope="module")
def custom_layer_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import keras

    from tests.field_models.custom_layers import DepthToSpace

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(12, 3, padding="same")(x)
    model = keras.Model(inputs, DepthToSpace(2)(x))
    images = tiny_models.training_images(32)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    model.fit(images[:, ::2, ::2], images, epochs=3, verbose=0)
    path = tmp_path_factory.mktemp("custom") / "espcn_custom.keras"
    model.save(path)
    return path


def test_a_custom_layer_is_refused_without_the_opt_in(custom_layer_model: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "check", str(custom_layer_model), "--out", str(tmp_path / "r"))
    assert code == 2
    line = one_line_error(err)
    assert "DepthToSpace" in line and "--custom-objects" in line


def test_a_custom_layer_loads_with_the_opt_in(custom_layer_model: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    code, _, err = run_cli(capsys, "check", str(custom_layer_model), "--custom-objects",
                           str(CUSTOM), "--targets", "tflite-int8,onnx-int8", "--analyze-all",
                           "--out", str(out))
    assert code in (0, 1), err
    report = json.loads((out / "report.json").read_text())
    for target in report["targets"]:
        assert target["error"] is None
        assert target["metrics"]["delta_e_mean"] is not None
        assert target["analysis"] is not None


def test_a_saved_subclassed_model_loads_with_the_opt_in(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    from tests.field_models.custom_layers import TinyEnhancer

    model = TinyEnhancer()
    model(np.zeros((1, 32, 32, 3), np.float32))
    path = tmp_path / "subclassed.keras"
    model.save(path)
    refused, _, err = run_cli(capsys, "check", str(path), "--out", str(tmp_path / "a"))
    assert refused == 2 and "--custom-objects" in one_line_error(err)
    code, _, err = run_cli(capsys, "check", str(path), "--custom-objects", str(CUSTOM),
                           "--targets", "tflite-fp16,onnx-fp16", "--out", str(tmp_path / "b"))
    assert code == 0, err


def test_an_in_memory_subclassed_model_needs_nothing(tmp_path: Path) -> None:
    import keras

    class Unregistered(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.mix = keras.layers.Conv2D(3, 1)

        def call(self, inputs):  # type: ignore[no-untyped-def]
            return inputs + 0.1 * self.mix(inputs)

    model = Unregistered()
    model(np.zeros((1, 32, 32, 3), np.float32))
    report = qcheck.check(model, targets=["tflite-int8", "onnx-int8"])
    for name in ("tflite-int8", "onnx-int8"):
        result = report.target(name)
        assert result.error is None and result.metrics.delta_e_mean is not None
    assert "<in-memory" in report.model.path
