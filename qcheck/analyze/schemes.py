"""How a target quantizes, simulated in float: weight rounding and fake-quantized activations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qcheck.types import Precision, TargetSpec

__all__ = ["CODE_RANGES", "ONNX_FP16_CLAMP", "Scheme", "affine_parameters", "fake_quantize",
           "fake_quantize_affine", "quantize_kernel", "scheme_for", "to_float16"]

FLOAT16_MAX = float(np.finfo(np.float16).max)
# TFLite's quantization spec: these kernels require output scale = input scale.
TFLITE_SAME_SCALE = frozenset({"AveragePooling2D", "MaxPooling2D", "UpSampling2D", "Reshape",
                               "Flatten", "Cropping2D", "GlobalMaxPooling2D"})
ONNX_FP16_CLAMP = (1e-7, 1e4)
TFLITE_FP16_CLAMP = (0.0, FLOAT16_MAX)  # TFLite saturates rather than storing infinities


@dataclass(frozen=True)
class Scheme:
    """``weights``: "int8" or "fp16" or None; ``activations``: "uint8", "int16", "fp16" or None."""

    weights: str | None
    per_channel: bool
    activations: str | None
    quantized_input: bool
    # Converters clamp weight magnitudes before casting to float16 (see the *_FP16_CLAMP values).
    fp16_clamp: tuple[float, float] | None = None
    # Layer kinds whose quantized output must reuse their input's scale and zero point (TFLite's
    # integer pooling, resizing and reshaping kernels): they inherit the upstream range.
    same_scale: frozenset[str] = frozenset()


def scheme_for(spec: TargetSpec, *, per_channel: bool | None = None) -> Scheme:
    channel = spec.per_channel if per_channel is None else per_channel
    precision = spec.precision
    shared = TFLITE_SAME_SCALE if spec.format.value == "tflite" else frozenset()
    if precision is Precision.INT8:
        return Scheme("int8", channel, "uint8", True, same_scale=shared)
    if precision is Precision.INT16X8:
        return Scheme("int8", channel, "int16", False, same_scale=shared)
    if precision is Precision.DYNAMIC_INT8:
        return Scheme("int8", channel, None, False)
    if precision is Precision.FP16:
        # Both keep float32 compute on this CPU: TFLite dequantizes float16 weights, and ONNX
        # Runtime's CPU provider runs most float16 nodes through inserted casts.
        onnx = spec.format.value == "onnx"
        return Scheme("fp16", channel, None, False,
                      ONNX_FP16_CLAMP if onnx else TFLITE_FP16_CLAMP)
    return Scheme(None, channel, None, False)


def quantize_kernel(kernel: np.ndarray, channel_axes: tuple[int, ...], scheme: Scheme
                    ) -> np.ndarray:
    """The kernel as the target stores it, dequantized back to float32."""
    if scheme.weights == "fp16":
        return to_float16(kernel, scheme.fp16_clamp)
    if scheme.weights != "int8":
        return kernel
    if scheme.per_channel:
        other = tuple(a for a in range(kernel.ndim) if a not in channel_axes)
        absmax = np.abs(kernel).max(axis=other, keepdims=True)
    else:
        absmax = np.abs(kernel).max(keepdims=True)
    scale = np.where(absmax > 0, absmax / 127.0, 1.0)
    return (np.clip(np.round(kernel / scale), -127, 127) * scale).astype(np.float32)


def to_float16(values: np.ndarray, clamp: tuple[float, float] | None = None) -> np.ndarray:
    """Float16 storage, after the converter's own clamping of magnitudes when it has one."""
    if clamp is not None:
        low, high = clamp
        magnitude = np.abs(values)
        clamped = np.where(magnitude > 0, np.clip(magnitude, low, high), 0.0)
        values = np.sign(values) * clamped
    with np.errstate(over="ignore"):
        return values.astype(np.float16).astype(np.float32)


# Integer code range of each activation kind: (lowest, highest).
CODE_RANGES = {"uint8": (0.0, 255.0), "int16": (-32767.0, 32767.0)}


def affine_parameters(low: float, high: float, kind: str | None) -> tuple[float, float]:
    """Scale and zero point of a tensor calibrated to [low, high], stored as ``kind``."""
    if kind == "int16":
        return max(abs(low), abs(high), 1e-12) / 32767.0, 0.0
    if kind != "uint8":
        return 1.0, 0.0
    # Asymmetric 8-bit with a zero point: the range is widened to include 0, as converters do.
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255.0 if high > low else 1.0
    return scale, float(np.round(-low / scale))


def fake_quantize(values: np.ndarray, low: float, high: float, kind: str | None) -> np.ndarray:
    """Round ``values`` as a tensor calibrated to [low, high] would be stored, then dequantize."""
    if kind is None:
        return values
    if kind == "fp16":
        return to_float16(values)
    scale, zero = affine_parameters(low, high, kind)
    return fake_quantize_affine(values, scale, zero, kind)


def fake_quantize_affine(values: np.ndarray, scale: float, zero: float, kind: str | None
                         ) -> np.ndarray:
    """Round to ``kind``'s codes with this scale and zero point, then back to real values."""
    if kind is None:
        return values
    if kind == "fp16":
        return to_float16(values)
    lowest, highest = CODE_RANGES[kind]
    codes = np.clip(np.round(values / np.float32(scale)) + np.float32(zero), lowest, highest)
    return ((codes - np.float32(zero)) * np.float32(scale)).astype(np.float32)
