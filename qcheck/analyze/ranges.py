"""How a target stores each layer's output: scale, zero point and the real range its codes
cover; the artifact's own choice where it could be read, else what calibration measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from qcheck.analyze.layers import LayerFacts
from qcheck.analyze.schemes import Scheme
from qcheck.analyze.stats import ActivationStats
from qcheck.numerics import CODE_RANGES, ActivationKind, affine_parameters

__all__ = ["Quantization", "TargetRanges"]

Quantization = tuple[float, float, float, float]  # scale, zero point, lowest, highest value


@dataclass
class TargetRanges:
    facts: list[LayerFacts]
    scheme: Scheme
    calib_stats: dict[str, ActivationStats]  # per layer, over the calibration images
    # The artifact's own (scale, zero point) per layer output, when it could be read; with
    # ``stored_complete`` (TFLite, whose tensor names keep every layer's scope) a layer missing
    # there is one the converter fused away, so its output stays float.
    stored_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    stored_complete: bool = False
    output_layer: str | None = None  # the layer whose output is the model's

    @cached_property
    def layers(self) -> dict[str, LayerFacts]:
        return {f.name: f for f in self.facts}

    @property
    def quantized_layers(self) -> list[str]:
        """Layers whose outputs the target stores quantized: those with a range in a TFLite
        artifact (fused layers have none), else every calibrated layer; a float16 target
        rounds only the model's output (see ``scheme_for``)."""
        if self.scheme.activations is ActivationKind.FP16:
            return [name for name in self.calib_stats if name == self.output_layer]
        if self.stored_ranges and self.stored_complete:
            return [name for name in self.calib_stats if name in self.stored_ranges]
        return list(self.calib_stats)

    def quantization(self, name: str) -> Quantization | None:
        """How the target stores ``name``'s output."""
        kind = self.scheme.activations
        stored = self.stored_ranges.get(name)
        if stored is not None and name in self.calib_stats and kind in CODE_RANGES and (
                kind is ActivationKind.UINT8 or stored[1] == 0):
            scale, zero = stored
            lowest, highest = CODE_RANGES[kind]
            return scale, zero, (lowest - zero) * scale, (highest - zero) * scale
        stats = self.quantized_range(name)
        if stats is None:
            return None
        scale, zero = affine_parameters(stats.low, stats.high, kind)
        return scale, zero, stats.low, stats.high

    def quantized_range(self, name: str) -> ActivationStats | None:
        """The calibrated range the target stores ``name``'s output with: its own, or, for a
        kernel that must keep its input's scale, the range of the layer feeding it."""
        layers = self.layers
        while name in layers and layers[name].kind in self.scheme.same_scale \
                and len(layers[name].inbound) == 1 and layers[name].inbound[0] in self.calib_stats:
            name = layers[name].inbound[0]
        return self.calib_stats.get(name)
