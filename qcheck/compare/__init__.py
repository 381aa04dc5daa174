"""Compare stage: colour metrics, artifact rules and tensor metrics, all streamed."""

from qcheck.compare.accumulate import CHUNK, ColourAccumulator
from qcheck.compare.artifacts import detect_artifacts
from qcheck.compare.color import ColourComparison, compare_colour
from qcheck.compare.metrics import OutputComparison, compare_outputs, out_of_range_fraction
from qcheck.compare.pixels import ColourPixels, to_unit_rgb

__all__ = ["CHUNK", "ColourAccumulator", "ColourComparison", "ColourPixels", "OutputComparison",
           "compare_colour", "compare_outputs", "detect_artifacts", "out_of_range_fraction",
           "to_unit_rgb"]
