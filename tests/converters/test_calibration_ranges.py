"""qcheck records TFLite's calibration ranges itself (``converters/calibration.py``): the
artifacts must be byte for byte what TensorFlow's converter makes with its own calibrator, on
the architectures people ship, and the ranges bit for bit what that calibrator records,
quirks included. Each case also checks which path ran, so a silent fallback to TensorFlow's
calibrator cannot pass for a match."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import converters
import converters.tflite as tflite_converter
from tests import tiny_models
from tests.field_models import architectures, generators, multi_io

ARCHITECTURES: dict[str, Callable[[], Any]] = {
    "mirnet_block": architectures.mirnet_block,  # dual attention: means, sigmoid gates
    "vit_classifier": architectures.vit_classifier,  # layer norm, attention, softmax head
    "oxford_unet": architectures.oxford_unet,  # separable convolutions, residual adds
    "mobilenet_v3": architectures.mobilenet_v3_classifier,  # hard-swish, squeeze-excite
    "instance_norm_generator": generators.instance_norm_generator,  # custom layer, tanh
    "inpainting_two_inputs": multi_io.inpainting_net,
}


@pytest.fixture
def calibrator_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the runs of TensorFlow's own calibrate step."""
    from tensorflow.lite.python.optimize import calibrator

    calls: list[int] = []
    original = calibrator.Calibrator.calibrate

    def counted(self: Any, dataset_gen: Any) -> Any:
        calls.append(1)
        return original(self, dataset_gen)

    monkeypatch.setattr(calibrator.Calibrator, "calibrate", counted)
    return calls


def _samples(model: Any, count: int = 12) -> Callable[[], Iterator[Any]]:
    """Calibration samples as qcheck hands them to the converter (a dict by input name for a
    model with several inputs)."""
    from converters.graph import input_names

    pixels = tiny_models.training_images(count, seed=5)
    rng = np.random.default_rng(5)
    parts = {}
    for name, tensor in zip(input_names(model) or ["image"], model.inputs, strict=True):
        height, width, channels = tensor.shape[1:]
        step = pixels.shape[1] // height
        data = pixels[:, ::step, ::step, :channels]
        if data.shape[-1] < channels or channels == 1:
            data = (rng.random((count, height, width, channels)) > 0.3).astype(np.float32)
        parts[name] = np.ascontiguousarray(data, np.float32)
    if len(parts) == 1:
        (only,) = parts.values()
        return lambda: (only[i:i + 1] for i in range(count))
    return lambda: ({name: data[i:i + 1] for name, data in parts.items()} for i in range(count))


def _both(model: Any, monkeypatch: pytest.MonkeyPatch, calls: list[int]
          ) -> tuple[bytes, bytes, int]:
    """The int8 artifact through TensorFlow's own calibrator and through qcheck's ranges,
    and how often qcheck's conversion ran TensorFlow's calibrator."""
    spec = converters.TARGETS["tflite-int8"]
    shape = (None, *tuple(model.inputs[0].shape)[1:])
    samples = _samples(model)
    with monkeypatch.context() as patch:
        patch.setattr(tflite_converter, "ranges_as_tflite_calibrates", contextlib.nullcontext)
        tensorflows = converters.convert(spec, converters.ConversionSource(model, shape), samples)
    assert calls == [1]
    qchecks = converters.convert(spec, converters.ConversionSource(model, shape), samples)
    return tensorflows, qchecks, len(calls) - 1


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_artifact_is_the_converters_own(name: str, monkeypatch: pytest.MonkeyPatch,
                                        calibrator_calls: list[int]) -> None:
    from qcheck.quiet import import_tensorflow

    import_tensorflow()
    tensorflows, qchecks, fallbacks = _both(ARCHITECTURES[name](), monkeypatch,
                                            calibrator_calls)
    assert fallbacks == 0, "fell back to TensorFlow's calibrator"
    assert qchecks == tensorflows


def _quirks_model() -> Any:
    """Tensors that are never positive, zeros of both signs, and ops TFLite runs in place
    (their input's memory rewritten with their output)."""
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 3))
    positive = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    negative = keras.layers.Lambda(lambda t: -t - 1.0)(positive)
    zeros = keras.layers.Lambda(lambda t: keras.ops.minimum(t * 0.0, 0.0))(negative)
    merged = keras.layers.Concatenate()([negative, zeros, positive])
    return keras.Model(inputs, keras.layers.Conv2D(3, 1)(merged))


def _ranges(model: bytes) -> dict[bytes, tuple[int, int]]:
    """Each tensor's recorded range as float32 bit patterns (so -0.0 is not 0.0)."""
    from tensorflow.lite.python import schema_py_generated as schema

    graph = schema.Model.GetRootAs(model, 0).Subgraphs(0)
    found = {}
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        quantization = tensor.Quantization()
        if quantization is not None and quantization.MinLength():
            found[tensor.Name()] = (
                int(np.float32(quantization.Min(0)).view(np.uint32)),
                int(np.float32(quantization.Max(0)).view(np.uint32)))
    return found


def test_ranges_are_the_calibrators_bit_for_bit(calibrator_calls: list[int]) -> None:
    """TensorFlow's calibrator starts each range at (FLT_MAX, FLT_MIN), keeps the first of
    equal elements, and logs an op's inputs again after it ran: all three reach the ranges."""
    from qcheck.quiet import import_tensorflow

    import_tensorflow()
    import tensorflow as tf
    from tensorflow.lite.python.optimize import calibrator

    from converters.calibration import tflite_calibration_ranges

    model = _quirks_model()
    rng = np.random.default_rng(0)
    batches = [[rng.random((1, 8, 8, 3), np.float32)] for _ in range(6)]
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: iter(batches)
    converter._experimental_calibrate_only = True
    float_model: list[bytes] = []
    original = calibrator.Calibrator.calibrate

    def keep_input(self: Any, dataset_gen: Any) -> Any:
        float_model.append(self._model_content)
        return original(self, dataset_gen)

    calibrator.Calibrator.calibrate = keep_input
    try:
        tensorflows = _ranges(bytes(converter.convert()))
    finally:
        calibrator.Calibrator.calibrate = original
    qchecks = _ranges(tflite_calibration_ranges(float_model[0], lambda: iter(batches)))
    assert qchecks == tensorflows
    flt_min = int(np.float32(np.finfo(np.float32).tiny).view(np.uint32))
    negative_zero = int(np.float32(-0.0).view(np.uint32))
    assert any(high == flt_min for _, high in qchecks.values()), "no never-positive tensor"
    assert any(low == negative_zero for low, _ in qchecks.values()), "no -0.0 minimum"


def test_nan_goes_to_tensorflows_calibrator(monkeypatch: pytest.MonkeyPatch,
                                            calibrator_calls: list[int]) -> None:
    """TensorFlow's calibrator skips NaNs (and warns); a model that makes them is calibrated
    by it, with the same artifact."""
    from qcheck.quiet import import_tensorflow

    import_tensorflow()
    import keras

    keras.utils.set_random_seed(4)
    inputs = keras.Input((8, 8, 3))
    roots = keras.layers.Lambda(lambda t: keras.ops.sqrt(t - 0.5))(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(roots))
    tensorflows, qchecks, fallbacks = _both(model, monkeypatch, calibrator_calls)
    assert fallbacks == 1
    assert qchecks == tensorflows


def test_samples_the_model_cannot_take_fail_in_tensorflows_words(
        monkeypatch: pytest.MonkeyPatch, calibrator_calls: list[int]) -> None:
    """Samples larger than the model's fixed input: TensorFlow's calibrator refuses to resize
    it, and qcheck's conversion fails with that same message."""
    from qcheck.quiet import import_tensorflow

    import_tensorflow()
    import keras

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs))
    spec = converters.TARGETS["tflite-int8"]
    samples = lambda: (np.zeros((1, 16, 16, 3), np.float32) for _ in range(3))  # noqa: E731
    failures = []
    for patched in (False, True):
        with monkeypatch.context() as patch:
            if not patched:
                patch.setattr(tflite_converter, "ranges_as_tflite_calibrates",
                              contextlib.nullcontext)
            with pytest.raises(converters.ConversionError) as raised:
                converters.convert(spec, converters.ConversionSource(model, (None, 8, 8, 3)),
                                   samples)
        failures.append(str(raised.value))
    assert "resize" in failures[0].lower()
    assert failures[1] == failures[0] and calibrator_calls == [1, 1]
