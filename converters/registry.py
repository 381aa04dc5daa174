"""The ten targets of the contract, by name, and the one entry point that converts to any."""

from __future__ import annotations

from converters.errors import ConversionError, UntraceableModel
from converters.onnx import convert_onnx
from converters.options import ConversionOptions
from converters.source import CalibrationSamples, ConversionSource
from converters.tflite import convert_tflite
from converters.types import Format, Precision, TargetSpec

__all__ = ["DEFAULT_TARGETS", "TARGETS", "convert", "toolchain_recipe"]

_T, _O = Format.TFLITE, Format.ONNX
TARGETS: dict[str, TargetSpec] = {
    spec.name: spec
    for spec in (
        TargetSpec("tflite-fp32", _T, Precision.FP32, True,
                   "TFLite, float32 (a conversion check only)"),
        TargetSpec("tflite-fp16", _T, Precision.FP16, True, "TFLite, float16 weights"),
        TargetSpec("tflite-dynamic-int8", _T, Precision.DYNAMIC_INT8, True,
                   "TFLite, dynamic-range int8 weights"),
        TargetSpec("tflite-int8", _T, Precision.INT8, True,
                   "TFLite, full-integer int8, per-channel weights"),
        TargetSpec("tflite-int8-per-tensor", _T, Precision.INT8, False,
                   "TFLite, full-integer int8, per-tensor weights (many NPUs and DSPs)"),
        TargetSpec("tflite-int16x8", _T, Precision.INT16X8, True,
                   "TFLite, int16 activations with int8 weights"),
        TargetSpec("onnx-fp32", _O, Precision.FP32, True, "ONNX via tf2onnx"),
        TargetSpec("onnx-fp16", _O, Precision.FP16, True, "ONNX float16 with float32 I/O"),
        TargetSpec("onnx-int8", _O, Precision.INT8, True,
                   "ONNX QDQ int8, static calibration, per-channel weights"),
        TargetSpec("onnx-int8-per-tensor", _O, Precision.INT8, False,
                   "ONNX QDQ int8, static calibration, per-tensor weights"),
    )
}

DEFAULT_TARGETS: tuple[str, ...] = ("tflite-fp16", "tflite-int8", "onnx-fp16", "onnx-int8")


def convert(spec: TargetSpec, source: ConversionSource, calibration: CalibrationSamples | None,
            *, signed_io: bool = False, options: ConversionOptions | None = None) -> bytes:
    """The serialized artifact for ``spec``; raises ``ConversionError`` when conversion fails."""
    options = options or ConversionOptions()
    spec = options.apply(spec)
    try:
        if spec.format is Format.TFLITE:
            content = convert_tflite(spec, source, calibration, signed_io=signed_io,
                                     options=options)
            return _named(spec, source, content) if source.named_io else content
        return convert_onnx(spec, source, calibration, options=options)
    except UntraceableModel as exc:  # said of the model: the target is named here
        raise ConversionError(f"{spec.name}: {exc}") from None


def _named(spec: TargetSpec, source: ConversionSource, content: bytes) -> bytes:
    from converters.signature import named_io

    try:
        return named_io(content, source.input_names, source.output_names)
    except ValueError as exc:
        raise ConversionError(f"{spec.name}: {exc}") from None


def toolchain_recipe(spec: TargetSpec, source: ConversionSource,
                     options: ConversionOptions) -> dict[str, object]:
    """``options``' per-layer choices under each tool's own names, as a user would pass them:
    ai-edge-quantizer's recipe and the TFLite converter's denylist, or ONNX Runtime's
    ``nodes_to_exclude`` and ``TensorQuantOverrides``."""
    from dataclasses import replace

    from converters.aeq import aeq_recipe
    from converters.onnx import onnx_recipe
    from converters.tflite import denied_tensors

    if spec.format is Format.ONNX:
        return {"onnxruntime": onnx_recipe(source.onnx_float, options)}
    wide = options.int16_activations or spec.precision is Precision.INT16X8
    float_model, last = source.tflite_float, source.output_layer
    converter: dict[str, object] = {
        "denylisted_nodes": denied_tensors(float_model, options.keep_float, last)}
    if options.int16_layers:
        converter["note"] = ("TensorFlow's converter has one activation width per model; "
                             "per-layer int16 needs ai-edge-quantizer")
    recipe = aeq_recipe(float_model, spec.per_channel, replace(options, int16_activations=wide),
                        last)
    return {"ai_edge_quantizer": recipe, "tflite_converter": converter}
