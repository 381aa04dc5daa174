"""Convert stage: one module per format, a registry of the contract's ten targets."""

from converters.options import ConversionOptions
from converters.registry import DEFAULT_TARGETS, TARGETS, convert, resolve_targets
from converters.source import CalibrationSamples, ConversionSource

__all__ = [
    "DEFAULT_TARGETS",
    "TARGETS",
    "CalibrationSamples",
    "ConversionOptions",
    "ConversionSource",
    "convert",
    "resolve_targets",
]
