"""Compare stage: colour metrics, artifact rules and tensor metrics."""

from qcheck.compare.artifacts import detect_artifacts
from qcheck.compare.color import ColourComparison, compare_colour, to_unit_rgb
from qcheck.compare.metrics import compare_outputs

__all__ = ["ColourComparison", "compare_colour", "compare_outputs", "detect_artifacts",
           "to_unit_rgb"]
