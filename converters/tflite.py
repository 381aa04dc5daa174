"""TFLite targets through TensorFlow's own converter."""

from __future__ import annotations

from dataclasses import replace

from converters.aeq import layer_outputs
from converters.calibration import ranges_as_tflite_calibrates
from converters.errors import ConversionError, first_line
from converters.naming import matching_names
from converters.options import AI_EDGE_QUANTIZER, ConversionOptions
from converters.quiet import native_quiet
from converters.source import CalibrationSamples, ConversionSource, calibration_digest
from converters.types import Precision, TargetSpec

__all__ = ["convert_tflite", "denied_tensors"]


def convert_tflite(spec: TargetSpec, source: ConversionSource,
                   calibration: CalibrationSamples | None, *, signed_io: bool,
                   options: ConversionOptions | None = None) -> bytes:
    """Convert with the scheme ``spec`` names; integer I/O is int8 if ``signed_io`` else uint8."""
    import tensorflow as tf

    with native_quiet():
        converter = source.tflite_converter()
    precision = spec.precision
    if options is not None and options.int16_activations and precision is Precision.INT8:
        precision = Precision.INT16X8
    if (options is not None and precision.needs_calibration
            and (options.int16_layers or options.tflite_quantizer == AI_EDGE_QUANTIZER)):
        if calibration is None:
            raise ConversionError(f"{spec.name} needs calibration images")
        from converters.aeq import convert_with_aeq

        wide = options.int16_activations or precision is Precision.INT16X8
        return convert_with_aeq(spec, source, calibration,
                                replace(options, int16_activations=wide))
    if options is not None and options.keep_float and precision.needs_calibration:
        if calibration is None:
            raise ConversionError(f"{spec.name} needs calibration images")
        return _selective(spec, source, calibration, options, precision)
    if precision is not Precision.FP32:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision is Precision.FP16:
        converter.target_spec.supported_types = [tf.float16]
    if precision.needs_calibration:
        if calibration is None:
            raise ConversionError(f"{spec.name} needs calibration images")
        converter.representative_dataset = lambda: source.calibration_lists(calibration())
    if precision is Precision.INT8:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = tf.int8 if signed_io else tf.uint8
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    if precision is Precision.INT16X8:
        # With the built-ins beside it, an op TFLite has no 16x8 kernel for (NEG and SQUARE of
        # a normalization, DEPTH_TO_SPACE) stays float instead of failing the conversion; a
        # model without such ops converts byte for byte as with 16x8 alone.
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
    if not spec.per_channel:
        # The converter's own switch for per-tensor weights (what many NPUs and DSPs need).
        converter._experimental_disable_per_channel = True
    try:
        with native_quiet(), ranges_as_tflite_calibrates():
            return bytes(converter.convert())
    except Exception as exc:  # The converter raises many types; all are a failed conversion.
        raise ConversionError(f"{spec.name}: TFLite conversion failed: {first_line(exc)}") from None


def _selective(spec: TargetSpec, source: ConversionSource, calibration: CalibrationSamples,
               options: ConversionOptions, precision: Precision) -> bytes:
    """Integer quantization (with the target's activation width) except the named Keras
    layers, which stay float (float I/O): calibrate once per calibration content, then
    TFLite's MLIR quantizer with those nodes denied (what QuantizationDebugger does, but at
    int16 too)."""
    from tensorflow.compiler.mlir.lite import types_pb2
    from tensorflow.lite.python import convert

    try:
        with native_quiet():
            calibrated = _calibrated(source, calibration)
            # Named as in the model the quantizer is handed (no float conversion just to read
            # names: the calibrated model is that float graph, with its ranges recorded).
            denied = denied_tensors(calibrated, options.keep_float, source.output_layer)
            if not denied:
                raise ConversionError(f"{spec.name}: no TFLite tensors belong to "
                                      f"{', '.join(options.keep_float)}")
            wide = precision is Precision.INT16X8
            return bytes(convert.mlir_quantize(
                calibrated, disable_per_channel=not spec.per_channel, fully_quantize=False,
                inference_type=types_pb2.QUANTIZED_INT16 if wide else types_pb2.QUANTIZED_INT8,
                denylisted_nodes=denied))
    except ConversionError:
        raise
    except Exception as exc:
        raise ConversionError(f"{spec.name}: selective TFLite quantization failed: "
                              f"{first_line(exc)}") from None


def _calibrated(source: ConversionSource, calibration: CalibrationSamples) -> bytes:
    """The float TFLite with the calibrated ranges recorded (TensorFlow's calibrate-only
    conversion), once per source and calibration content: every selective build from the
    same calibration (the per-layer builds attribution measures) starts from it."""
    import tensorflow as tf

    memo: dict[str, bytes] = source.__dict__.setdefault("_calibrated_tflite", {})
    key = calibration_digest(calibration)
    if key not in memo:
        converter = source.tflite_converter()
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: source.calibration_lists(calibration())
        converter.experimental_mlir_quantizer = True
        converter._experimental_calibrate_only = True
        with ranges_as_tflite_calibrates():
            memo[key] = bytes(converter.convert())
    return memo[key]


def denied_tensors(float_model: bytes, keep_float: tuple[str, ...], last_layer: str | None
                   ) -> list[str]:
    """The tensor names TensorFlow's selective quantization must deny to keep ``keep_float``
    float: the layers' own, and for the last layer the op TFLite names after the output."""
    from ai_edge_litert.interpreter import Interpreter

    names = [d["name"] for d in Interpreter(model_content=float_model).get_tensor_details()]
    denied = matching_names(keep_float, names)
    if last_layer is not None and last_layer in keep_float:
        outputs = layer_outputs(float_model, [last_layer], last_layer)[last_layer]
        denied += [name for name in outputs if name not in denied]
    return denied

