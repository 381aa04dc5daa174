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
