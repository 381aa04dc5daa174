"""The one place qcheck quantizes, dequantizes and fake-quantizes numbers.

Runners use it for quantized model inputs and outputs, the simulation for weights and
activations, and the traced forward (in TensorFlow) through the same functions with
TensorFlow's operations, so every path rounds the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

__all__ = [
    "CODE_RANGES",
    "FLOAT16_MAX",
    "FLOAT16_MIN_NORMAL",
    "INT8_WEIGHT_LEVELS",
    "NUMPY_OPS",
    "ActivationKind",
    "ArrayOps",
    "WeightKind",
    "affine_parameters",
    "dequantize",
    "fake_quantize",
    "fake_quantize_affine",
    "quantize",
    "round_weights",
    "tensorflow_ops",
    "to_float16",
]

FLOAT16_MAX = float(np.finfo(np.float16).max)
FLOAT16_MIN_NORMAL = float(np.finfo(np.float16).tiny)
# Symmetric int8 weights use codes −127…127 (converters never use −128 for weights).
INT8_WEIGHT_LEVELS = 127


class WeightKind(StrEnum):
    """How a target stores weights."""

    INT8 = "int8"
    FP16 = "fp16"


class ActivationKind(StrEnum):
    """How a target stores the activations between layers."""

    UINT8 = "uint8"  # asymmetric 8-bit with a zero point (int8 codes shifted by 128)
    INT16 = "int16"  # symmetric 16-bit, zero point 0
    FP16 = "fp16"


# Integer code range of each integer activation kind: (lowest, highest).
CODE_RANGES: dict[ActivationKind, tuple[float, float]] = {
    ActivationKind.UINT8: (0.0, 255.0),
    ActivationKind.INT16: (-32767.0, 32767.0),
}


@dataclass(frozen=True)
class ArrayOps:
    """The three operations rounding needs, for numpy arrays or TensorFlow tensors."""

    round: Callable[[Any], Any]
    clip: Callable[[Any, Any, Any], Any]
    as_float16: Callable[[Any], Any]  # store as float16, compute on in float32


def _numpy_float16(values: Any) -> Any:
    with np.errstate(over="ignore"):
        return np.asarray(values).astype(np.float16).astype(np.float32)


NUMPY_OPS = ArrayOps(np.round, np.clip, _numpy_float16)


def tensorflow_ops() -> ArrayOps:
    import tensorflow as tf

    return ArrayOps(tf.round, tf.clip_by_value,
                    lambda values: tf.cast(tf.cast(values, tf.float16), tf.float32))


def _codes(values: Any, scale: Any, zero: Any, lowest: float, highest: float,
           ops: ArrayOps) -> Any:
    return ops.clip(ops.round(values / scale) + zero, lowest, highest)


def quantize(values: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """Real values to ``dtype`` codes with this scale and zero point (saturating)."""
    info = np.iinfo(dtype)
    codes = _codes(values, np.float32(scale), np.float32(zero_point), info.min, info.max,
                   NUMPY_OPS)
    return np.asarray(codes).astype(dtype)


def dequantize(codes: Any, scale: Any, zero_point: Any) -> Any:
    """Codes back to real values; numpy arrays come back as float32."""
    if isinstance(codes, np.ndarray):
        real = (codes.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)
        return real.astype(np.float32)
    return (codes - zero_point) * scale


def affine_parameters(low: float, high: float, kind: ActivationKind | None
                      ) -> tuple[float, float]:
    """Scale and zero point of a tensor calibrated to [low, high], stored as ``kind``."""
    if kind is ActivationKind.INT16:
        return max(abs(low), abs(high), 1e-12) / CODE_RANGES[kind][1], 0.0
    if kind is not ActivationKind.UINT8:
        return 1.0, 0.0
    # Asymmetric 8-bit with a zero point: the range is widened to include 0, as converters do.
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255.0 if high > low else 1.0
    return scale, float(np.round(-low / scale))


def fake_quantize_affine(values: Any, scale: Any, zero: Any, kind: ActivationKind | None,
                         ops: ArrayOps = NUMPY_OPS) -> Any:
    """Round to ``kind``'s codes with this scale and zero point, then back to real values."""
    if kind is None:
        return values
    if kind is ActivationKind.FP16:
        return ops.as_float16(values)
    if ops is NUMPY_OPS:
        scale, zero = np.float32(scale), np.float32(zero)
    lowest, highest = CODE_RANGES[kind]
    return dequantize(_codes(values, scale, zero, lowest, highest, ops), scale, zero)


def fake_quantize(values: np.ndarray, low: float, high: float, kind: ActivationKind | None
                  ) -> np.ndarray:
    """Round ``values`` as a tensor calibrated to [low, high] would be stored, then dequantize."""
    if kind is None or kind is ActivationKind.FP16:
        return fake_quantize_affine(values, 1.0, 0.0, kind)
    scale, zero = affine_parameters(low, high, kind)
    return fake_quantize_affine(values, scale, zero, kind)


def to_float16(values: np.ndarray, clamp: tuple[float, float] | None = None) -> np.ndarray:
    """Float16 storage, after the converter's own clamping of magnitudes when it has one."""
    if clamp is not None:
        low, high = clamp
        magnitude = np.abs(values)
        clamped = np.where(magnitude > 0, np.clip(magnitude, low, high), 0.0)
        values = np.sign(values) * clamped
    return np.asarray(NUMPY_OPS.as_float16(values))


def round_weights(kernel: np.ndarray, channel_axes: tuple[int, ...], per_channel: bool
                  ) -> np.ndarray:
    """A kernel rounded to symmetric int8 (one scale per output channel or per tensor), as
    float32 again."""
    if per_channel:
        other = tuple(a for a in range(kernel.ndim) if a not in channel_axes)
        absmax = np.abs(kernel).max(axis=other, keepdims=True)
    else:
        absmax = np.abs(kernel).max(keepdims=True)
    scale = np.where(absmax > 0, absmax / INT8_WEIGHT_LEVELS, 1.0)
    codes = np.clip(np.round(kernel / scale), -INT8_WEIGHT_LEVELS, INT8_WEIGHT_LEVELS)
    return (codes * scale).astype(np.float32)
