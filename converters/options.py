"""Adjustments to a target's scheme, as the advisor's fixes need them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from converters.types import TargetSpec

__all__ = ["AI_EDGE_QUANTIZER", "CALIBRATION_METHODS", "CONVERTER", "ConversionOptions"]

CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
# Who quantizes a TFLite target: TensorFlow's converter (the target's own quantizer), or
# ai-edge-quantizer (per-op recipes; the only one that mixes activation widths per layer).
CONVERTER = "converter"
AI_EDGE_QUANTIZER = "ai-edge-quantizer"


@dataclass(frozen=True)
class ConversionOptions:
    """``None``/empty means "as the target says"."""

    per_channel: bool | None = None
    keep_float: tuple[str, ...] = ()  # Keras layer names left unquantized
    int16_activations: bool = False
    int16_layers: tuple[str, ...] = ()  # Keras layer names with 16-bit activations
    calibration_method: str = "minmax"
    # Add the bundled synthetic colour references (calibration half only) to calibration.
    extra_calibration: bool = False
    tflite_quantizer: str = CONVERTER  # or AI_EDGE_QUANTIZER
    # A planned recipe: the worker also resolves its layer choices to each tool's own names.
    planned: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ConversionOptions:
        if not data:
            return cls()
        values = dict(data)
        for name in ("keep_float", "int16_layers"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()
                if v != getattr(ConversionOptions(), k)}

    def apply(self, spec: TargetSpec) -> TargetSpec:
        if self.per_channel is None or self.per_channel == spec.per_channel:
            return spec
        return replace(spec, per_channel=self.per_channel)
