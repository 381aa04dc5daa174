"""What a deployment target is: a format and a numeric scheme.

These live in the conversion layer because converters need them; ``qcheck.types`` re-exports
them for everything above.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Format", "Precision", "TargetSpec"]


class Format(StrEnum):
    TFLITE = "tflite"
    ONNX = "onnx"

    @property
    def suffix(self) -> str:
        return f".{self.value}"


class Precision(StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"
    DYNAMIC_INT8 = "dynamic-int8"
    INT8 = "int8"
    INT16X8 = "int16x8"

    @property
    def is_integer(self) -> bool:
        return self in (Precision.INT8, Precision.INT16X8)

    @property
    def needs_calibration(self) -> bool:
        return self.is_integer


@dataclass(frozen=True)
class TargetSpec:
    """One deployment target: a format and a numeric scheme."""

    name: str
    format: Format
    precision: Precision
    per_channel: bool
    summary: str

    @property
    def suffix(self) -> str:
        return self.format.suffix
