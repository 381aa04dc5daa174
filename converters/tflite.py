"""TFLite targets through TensorFlow's own converter."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from converters.options import ConversionOptions
from converters.source import CalibrationSamples, ConversionSource
from qcheck.errors import ConversionError, first_line
from qcheck.quiet import native_quiet
from qcheck.types import Precision, TargetSpec

__all__ = ["convert_tflite"]


def convert_tflite(spec: TargetSpec, source: ConversionSource,
                   calibration: CalibrationSamples | None, *, signed_io: bool,
                   options: ConversionOptions | None = None) -> bytes:
    """Convert with the scheme ``spec`` names; integer I/O is int8 if ``signed_io`` else uint8."""
    import tensorflow as tf

    with native_quiet():
        converter = tf.lite.TFLiteConverter.from_concrete_functions([source.frozen_function])
    precision = spec.precision
    if precision is not Precision.FP32:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision is Precision.FP16:
        converter.target_spec.supported_types = [tf.float16]
    if precision.needs_calibration:
        if calibration is None:
            raise ConversionError(f"{spec.name} needs calibration images")
        converter.representative_dataset = lambda: _as_lists(calibration())
    if precision is Precision.INT8:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = tf.int8 if signed_io else tf.uint8
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    if precision is Precision.INT16X8:
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
    if not spec.per_channel:
        # The converter's own switch for per-tensor weights (what many NPUs and DSPs need).
        converter._experimental_disable_per_channel = True
    try:
        with native_quiet():
            return bytes(converter.convert())
    except Exception as exc:  # The converter raises many types; all are a failed conversion.
        raise ConversionError(f"{spec.name}: TFLite conversion failed: {first_line(exc)}") from None


def _as_lists(samples: Iterator[np.ndarray]) -> Iterator[list[np.ndarray]]:
    for sample in samples:
        yield [sample]
