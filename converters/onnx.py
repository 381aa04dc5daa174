"""ONNX targets: tf2onnx for float, onnxconverter-common for float16, ONNX Runtime for int8."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from converters.options import ConversionOptions
from converters.source import INPUT_NAME, CalibrationSamples, ConversionSource
from qcheck.errors import ConversionError, first_line
from qcheck.quiet import native_quiet
from qcheck.types import Precision, TargetSpec

__all__ = ["convert_onnx"]


def convert_onnx(spec: TargetSpec, source: ConversionSource,
                 calibration: CalibrationSamples | None,
                 options: ConversionOptions | None = None) -> bytes:
    try:
        with native_quiet():
            float_model = source.onnx_float
    except Exception as exc:  # tf2onnx raises many types; all are a failed export.
        raise ConversionError(f"{spec.name}: ONNX export failed: {first_line(exc)}") from None
    if spec.precision is Precision.FP32:
        return float_model
    if spec.precision is Precision.FP16:
        return _to_float16(spec, float_model)
    if spec.precision is Precision.INT8:
        if calibration is None:
            raise ConversionError(f"{spec.name} needs calibration images")
        return _quantize_qdq(spec, float_model, calibration)
    raise ConversionError(f"{spec.name}: precision {spec.precision.value} has no ONNX converter")


def _to_float16(spec: TargetSpec, float_model: bytes) -> bytes:
    import onnx
    from onnxconverter_common import float16

    try:
        proto = onnx.load_from_string(float_model)
        half = float16.convert_float_to_float16(proto, keep_io_types=True)
        return bytes(half.SerializeToString())
    except Exception as exc:
        raise ConversionError(
            f"{spec.name}: float16 conversion failed: {first_line(exc)}") from None


class _SampleReader:
    """ONNX Runtime's CalibrationDataReader protocol over qcheck's shared samples."""

    def __init__(self, samples: Iterator[np.ndarray]):
        self._samples = samples

    def get_next(self) -> dict[str, np.ndarray] | None:
        sample = next(self._samples, None)
        return None if sample is None else {INPUT_NAME: sample}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return iter(self.get_next, None)


def _quantize_qdq(spec: TargetSpec, float_model: bytes, calibration: CalibrationSamples) -> bytes:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    with tempfile.TemporaryDirectory(prefix="qcheck-ort-") as tmp:
        source_path = Path(tmp) / "float.onnx"
        target_path = Path(tmp) / "int8.onnx"
        source_path.write_bytes(float_model)
        try:
            with native_quiet():
                quantize_static(
                    str(source_path), str(target_path), _SampleReader(calibration()),
                    quant_format=QuantFormat.QDQ, per_channel=spec.per_channel,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                )
        except Exception as exc:
            raise ConversionError(f"{spec.name}: ONNX Runtime quantization failed: "
                                  f"{first_line(exc)}") from None
        return target_path.read_bytes()
