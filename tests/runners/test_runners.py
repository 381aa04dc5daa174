"""The runners behind one base: activate / infer / deactivate, float batches in and out whatever
the artifact's own I/O types, on real LiteRT and ONNX Runtime sessions of a tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import converters
from qcheck.runners import KerasRunner, runner_for
from qcheck.runners.base import BaseRunner
from qcheck.runners.io import artifact_io

pytestmark = pytest.mark.compat  # every runner, on the oldest tested stack too


class _Doubling(BaseRunner):
    name = "doubling"

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def activate_impl(self) -> None:
        self.events.append("activate")

    def deactivate_impl(self) -> None:
        self.events.append("deactivate")

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        return batch * 2


def test_the_base_runner_activates_once_and_refuses_work_while_inactive() -> None:
    runner = _Doubling()
    with pytest.raises(RuntimeError, match="before activate"):
        runner.infer(np.zeros((1, 2), np.float32))
    with runner:
        runner.activate()
        out = runner.infer(np.arange(4, dtype=np.float64).reshape(2, 2))
    assert runner.events == ["activate", "deactivate"]
    assert out.dtype == np.float32 and out.tolist() == [[0, 2], [4, 6]]


def test_infer_to_file_streams_batches_and_checks_the_count(tmp_path: Path) -> None:
    batches = [np.full((2, 3), i, np.float32) for i in range(3)]
    with _Doubling() as runner:
        runner.infer_to_file(batches, 6, tmp_path / "out.npy")
        with pytest.raises(ValueError, match="expected 7 outputs, produced 6"):
            runner.infer_to_file(batches, 7, tmp_path / "short.npy")
    assert np.load(tmp_path / "out.npy").tolist() == [[2 * (i // 2)] * 3 for i in range(6)]


@pytest.fixture(scope="module")
def artifacts(enhancer):  # type: ignore[no-untyped-def]
    from qcheck.load import ModelFeed, bundled_images
    from qcheck.types import InputRange

    calib, evaluation = bundled_images((32, 32))
    images = np.asarray(evaluation.pixels[:8], np.float32)
    source = converters.ConversionSource(enhancer, (None, 32, 32, 3))
    samples = ModelFeed(calib, InputRange(0, 1)).samples
    built = {name: converters.convert(converters.TARGETS[name], source, samples)
             for name in ("tflite-fp32", "onnx-fp32", "tflite-int8", "onnx-int8")}
    return images, np.asarray(enhancer(images)), built


@pytest.mark.parametrize("name", ["tflite-fp32", "onnx-fp32"])
def test_float_artifacts_reproduce_the_keras_model(artifacts, name: str) -> None:  # type: ignore[no-untyped-def]
    images, expected, built = artifacts
    spec = converters.TARGETS[name]
    for reference in (False, True):  # default kernels, and the reference ones
        with runner_for(spec.format, built[name], reference=reference) as runner:
            np.testing.assert_allclose(runner.infer_all([images[:3], images[3:]]), expected,
                                       atol=1e-4)


@pytest.mark.parametrize("name", ["tflite-int8", "onnx-int8"])
def test_quantized_artifacts_take_and_give_floats(artifacts, name: str) -> None:  # type: ignore[no-untyped-def]
    """The runner quantizes inputs and dequantizes outputs with the artifact's own scale and
    zero point: callers see floats in the model's range, close to the float model's."""
    images, expected, built = artifacts
    spec = converters.TARGETS[name]
    with runner_for(spec.format, built[name]) as runner:
        produced = runner.infer(images)
    assert produced.dtype == np.float32 and produced.shape == expected.shape
    step = 1 / 255
    assert np.abs(produced - expected).mean() < 4 * step
    if spec.format is converters.Format.TFLITE:  # full-integer: uint8 I/O for 0:1 pixels
        inputs, outputs = artifact_io(spec.format, built[name])
        assert inputs[0].dtype == "uint8" and outputs[0].scale is not None


def test_the_keras_runner_matches_calling_the_model(enhancer) -> None:  # type: ignore[no-untyped-def]
    images = np.random.default_rng(1).random((4, 32, 32, 3), dtype=np.float32)
    with KerasRunner(enhancer) as runner:
        np.testing.assert_allclose(runner.infer(images), np.asarray(enhancer(images)),
                                   atol=1e-5)


@pytest.mark.parametrize("name", ["onnx-fp32", "onnx-int8"])
def test_onnx_runtime_without_spinning_gives_the_same_outputs(artifacts, name: str) -> None:  # type: ignore[no-untyped-def]
    """qcheck's own runs wait without spinning; the latency runs keep ONNX Runtime's default.
    The outputs are bit-identical either way, and to a session made with every default."""
    import onnxruntime as ort

    images, _expected, built = artifacts
    spec = converters.TARGETS[name]
    with runner_for(spec.format, built[name]) as quiet, \
            runner_for(spec.format, built[name], timed=True) as spinning:
        assert not quiet.spinning and spinning.spinning
        produced = quiet.infer(images)
        np.testing.assert_array_equal(produced, spinning.infer(images))
    session = ort.InferenceSession(built[name], providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    raw = session.run(None, {feed.name: images.astype(np.float32)})[0]
    np.testing.assert_array_equal(produced, raw)
