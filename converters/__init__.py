"""Convert stage: one module per format, a registry of the contract's ten targets.

This is the lowest layer: it imports nothing from ``qcheck``; ``qcheck`` builds on it.
"""

from converters.errors import ConversionError, first_line
from converters.options import CALIBRATION_METHODS, ConversionOptions
from converters.registry import DEFAULT_TARGETS, TARGETS, convert, toolchain_recipe
from converters.source import CalibrationSamples, ConversionSource
from converters.types import Format, Precision, TargetSpec

__all__ = [
    "CALIBRATION_METHODS",
    "DEFAULT_TARGETS",
    "TARGETS",
    "CalibrationSamples",
    "ConversionError",
    "ConversionOptions",
    "ConversionSource",
    "Format",
    "Precision",
    "TargetSpec",
    "convert",
    "first_line",
    "toolchain_recipe",
]
