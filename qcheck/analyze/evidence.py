"""What every analyzer reads: the model's layers and its measured activation ranges."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qcheck.analyze.layers import LayerFacts
from qcheck.analyze.stats import ActivationStats
from qcheck.types import InputRange

__all__ = ["ModelEvidence"]


@dataclass(frozen=True)
class ModelEvidence:
    model: Any
    facts: list[LayerFacts]
    input_name: str
    input_range: InputRange
    input_stats: ActivationStats
    calib_stats: dict[str, ActivationStats]  # per layer, over the calibration images
    calib_pixels: np.ndarray  # RGB in [0, 1]
    eval_pixels: np.ndarray
    output_range: InputRange | None = None  # how colour outputs are read (None: not colour)
    # What simulations of any target measured that depends on the weights alone (keyed by the
    # images, the weight scheme and the layers): the targets of one check share it.
    weight_measures: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    # The calibration half as the model takes it (a ``ModelFeed``), for a model with several
    # inputs; None: the pixels in the input range are the input.
    calibration_feed: Any = None

    def model_inputs(self, count: int = 8) -> Any:
        """A few calibration images, as the model takes them (with what its other inputs
        are fed, for a model with several)."""
        if self.calibration_feed is not None:
            return self.calibration_feed.rows(slice(0, count))
        pixels = np.asarray(self.calib_pixels[:count], np.float32)
        return (pixels * self.input_range.span + self.input_range.low).astype(np.float32)

    def layer(self, name: str) -> LayerFacts:
        for facts in self.facts:
            if facts.name == name:
                return facts
        raise KeyError(name)

    def consumers(self, name: str) -> list[LayerFacts]:
        return [f for f in self.facts if name in f.inbound]
