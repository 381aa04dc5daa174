"""A calibration computed once and reused builds the same bytes as a fresh one: TFLite's
selective quantization from the memoized calibrate-only model, ONNX Runtime's quantizer from
its calibration cache."""

from __future__ import annotations

import inspect

import pytest
from onnxruntime.quantization import quantize_static

import converters
import converters.onnx as onnx_converter
from qcheck.load import ModelFeed
from qcheck.load.images import ImageSet
from qcheck.types import InputRange
from tests import tiny_models


@pytest.mark.parametrize("target", ["tflite-int8", "onnx-int8"])
def test_reused_calibration_builds_identical_artifacts(enhancer, target: str,  # type: ignore[no-untyped-def]
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    spec = converters.TARGETS[target]
    pixels = tiny_models.training_images(12, seed=7)
    samples = ModelFeed(ImageSet(tuple(map(str, range(12))), pixels, source="test"),
                        InputRange(0, 1)).samples
    keep = converters.ConversionOptions(keep_float=("conv_b",))
    shared = converters.ConversionSource(enhancer, (None, *enhancer.input_shape[1:]))
    first = converters.convert(spec, shared, samples, options=keep)
    reused = converters.convert(spec, shared, samples, options=keep)  # from the memo / cache
    if target.startswith("onnx"):  # the same float export, calibrated afresh
        monkeypatch.setattr(onnx_converter, "_calibration_cache", lambda *args: {})
        fresh_source = shared
    else:  # a new source: the calibrate-only model made again
        fresh_source = converters.ConversionSource(enhancer, (None, *enhancer.input_shape[1:]))
    fresh = converters.convert(spec, fresh_source, samples, options=keep)
    assert reused == first == fresh
    if target.startswith("tflite"):
        assert len(shared.__dict__["_calibrated_tflite"]) == 1
    elif "calibration_cache_path" in inspect.signature(quantize_static).parameters:
        folder = onnx_converter.calibration_folder()
        assert folder is not None and list(folder.glob("*.json")), "no calibration cached"


def test_onnx_int8_is_onnx_runtimes_own_artifact(enhancer, tmp_path,  # type: ignore[no-untyped-def]
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """qcheck's calibrator sessions wait without spinning (``_calibration_without_spinning``);
    the artifact is byte for byte the one ONNX Runtime's ``quantize_static`` makes with its
    defaults from the same export and images."""
    import onnxruntime
    from onnxruntime.quantization import QuantFormat, QuantType

    monkeypatch.setattr(onnx_converter, "_calibration_cache", lambda *args: {})
    spec = converters.TARGETS["onnx-int8"]
    pixels = tiny_models.training_images(12, seed=3)
    samples = ModelFeed(ImageSet(tuple(map(str, range(12))), pixels, source="test"),
                        InputRange(0, 1)).samples
    source = converters.ConversionSource(enhancer, (None, *enhancer.input_shape[1:]))
    runtime_options = onnxruntime.SessionOptions
    made = converters.convert(spec, source, samples)
    assert onnxruntime.SessionOptions is runtime_options  # put back after the conversion
    (tmp_path / "float.onnx").write_bytes(source.onnx_float)
    quantize_static(str(tmp_path / "float.onnx"), str(tmp_path / "int8.onnx"),
                    onnx_converter._SampleReader(samples(), "image"),
                    quant_format=QuantFormat.QDQ, per_channel=spec.per_channel,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    assert made == (tmp_path / "int8.onnx").read_bytes()
