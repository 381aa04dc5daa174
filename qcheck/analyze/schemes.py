"""How a target quantizes, described for the simulation: weight rounding and activation kind."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qcheck.numerics import (
    FLOAT16_MAX,
    ActivationKind,
    WeightKind,
    round_weights,
    to_float16,
)
from qcheck.types import Format, Precision, TargetSpec

__all__ = ["ONNX_FP16_CLAMP", "TFLITE_SAME_SCALE", "Scheme", "quantize_kernel", "scheme_for"]

# TFLite's quantization spec: these kernels require output scale = input scale.
TFLITE_SAME_SCALE = frozenset({"AveragePooling2D", "MaxPooling2D", "UpSampling2D", "Reshape",
                               "Flatten", "Cropping2D", "GlobalMaxPooling2D"})
ONNX_FP16_CLAMP = (1e-7, 1e4)
TFLITE_FP16_CLAMP = (0.0, FLOAT16_MAX)  # TFLite saturates rather than storing infinities


@dataclass(frozen=True)
class Scheme:
    """What the target does to weights and to activations (``None``: keeps them float32)."""

    weights: WeightKind | None
    per_channel: bool
    activations: ActivationKind | None
    quantized_input: bool
    # Converters clamp weight magnitudes before casting to float16 (see the *_FP16_CLAMP values).
    fp16_clamp: tuple[float, float] | None = None
    # Layer kinds whose quantized output must reuse their input's scale and zero point (TFLite's
    # integer pooling, resizing and reshaping kernels): they inherit the upstream range.
    same_scale: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Plain strings ("int8", "uint8", …) name the same kinds.
        if self.weights is not None:
            object.__setattr__(self, "weights", WeightKind(self.weights))
        if self.activations is not None:
            object.__setattr__(self, "activations", ActivationKind(self.activations))


def scheme_for(spec: TargetSpec, *, per_channel: bool | None = None) -> Scheme:
    channel = spec.per_channel if per_channel is None else per_channel
    precision = spec.precision
    shared = TFLITE_SAME_SCALE if spec.format is Format.TFLITE else frozenset()
    if precision is Precision.INT8:
        return Scheme(WeightKind.INT8, channel, ActivationKind.UINT8, True, same_scale=shared)
    if precision is Precision.INT16X8:
        return Scheme(WeightKind.INT8, channel, ActivationKind.INT16, False, same_scale=shared)
    if precision is Precision.DYNAMIC_INT8:
        return Scheme(WeightKind.INT8, channel, None, False)
    if precision is Precision.FP16:
        # Measured on this machine's runtimes (tests/faults/test_numbers.py): both compute in
        # float32 with float16 weights; ONNX Runtime's CPU provider fuses the casts around its
        # float32 kernels but hands the model's output back through float16. TFLite keeps
        # float32 activations throughout.
        if spec.format is Format.ONNX:
            return Scheme(WeightKind.FP16, channel, ActivationKind.FP16, False, ONNX_FP16_CLAMP)
        return Scheme(WeightKind.FP16, channel, None, False, TFLITE_FP16_CLAMP)
    return Scheme(None, channel, None, False)


def quantize_kernel(kernel: np.ndarray, channel_axes: tuple[int, ...], scheme: Scheme
                    ) -> np.ndarray:
    """The kernel as the target stores it, dequantized back to float32."""
    if scheme.weights is WeightKind.FP16:
        return to_float16(kernel, scheme.fp16_clamp)
    if scheme.weights is WeightKind.INT8:
        return round_weights(kernel, channel_axes, scheme.per_channel)
    return kernel
