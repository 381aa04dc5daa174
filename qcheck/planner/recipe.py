"""A mixed-precision recipe: per Keras layer, int8 (the default), int16 activations or float.

The recipe is keyed by the user's layer names; converters resolve those names to their own
(``converters.aeq``, ``converters.onnx.onnx_recipe``) every time they convert, so one recipe
file rebuilds the same artifact for TFLite and ONNX Runtime.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import converters
from qcheck.errors import UsageError

__all__ = ["AEQ", "CONVERTER", "PLANNABLE", "RECIPE_SCHEMA", "Choice", "Recipe", "load_recipe"]

RECIPE_SCHEMA = "qcheck.recipe/1"
CONVERTER = converters.options.CONVERTER  # the target's own: TensorFlow's, ONNX Runtime's
AEQ = converters.options.AI_EDGE_QUANTIZER  # TFLite only: int16 activations per layer
# Per-layer precision means something only where activations are quantized with calibration.
PLANNABLE = tuple(name for name, spec in converters.TARGETS.items()
                  if spec.precision.needs_calibration)


class Choice(StrEnum):
    INT8 = "int8"
    INT16 = "int16"  # 16-bit activations, int8 weights
    FLOAT = "float"


@dataclass(frozen=True)
class Recipe:
    """A target and the layers that leave its default int8."""

    target: str
    layers: tuple[tuple[str, Choice], ...] = ()  # sorted by layer; never INT8
    calibration_method: str = "minmax"
    quantizer: str = CONVERTER  # for TFLite: AEQ, or the converter (an int16 layer needs AEQ)

    def with_choice(self, layer: str, choice: Choice) -> Recipe:
        chosen = {name: c for name, c in self.layers if name != layer}
        if choice is not Choice.INT8:
            chosen[layer] = choice
        return replace(self, layers=tuple(sorted(chosen.items())))

    def choice(self, layer: str) -> Choice:
        return dict(self.layers).get(layer, Choice.INT8)

    def count(self, choice: Choice) -> int:
        return sum(1 for _, c in self.layers if c is choice)

    @property
    def tflite_quantizer(self) -> str:
        """Who builds it for TFLite: TensorFlow's converter (the target's own quantizer, with
        float layers denied) or ai-edge-quantizer, which alone mixes int16 layers in."""
        return AEQ if self.quantizer == AEQ or self.count(Choice.INT16) else CONVERTER

    @property
    def built_with(self) -> str:
        """The tool that builds it: ``onnxruntime``, or the TFLite quantizer."""
        if converters.TARGETS[self.target].format is converters.Format.ONNX:
            return "onnxruntime"
        return self.tflite_quantizer

    def options(self) -> converters.ConversionOptions:
        """The conversion options that build this recipe (all-int8 with the converter:
        exactly the target's own conversion, so it is the check's artifact, from the cache)."""
        if not self.layers and self.tflite_quantizer == CONVERTER \
                and self.calibration_method == "minmax":
            return converters.ConversionOptions()
        return converters.ConversionOptions(
            keep_float=tuple(n for n, c in self.layers if c is Choice.FLOAT),
            int16_layers=tuple(n for n, c in self.layers if c is Choice.INT16),
            calibration_method=self.calibration_method, tflite_quantizer=self.tflite_quantizer,
            planned=True)

    def describe(self) -> str:
        chosen = ", ".join(f"{name} {choice.value}" for name, choice in self.layers)
        text = chosen or "every layer int8"
        return f"{text} (ai-edge-quantizer)" if self.built_with == AEQ else text

    def to_dict(self) -> dict[str, Any]:
        return {"schema": RECIPE_SCHEMA, "target": self.target,
                "layers": {name: choice.value for name, choice in self.layers},
                "calibration_method": self.calibration_method, "quantizer": self.quantizer}

    @classmethod
    def from_dict(cls, data: Any, origin: str = "recipe") -> Recipe:
        if not isinstance(data, dict) or data.get("schema") != RECIPE_SCHEMA:
            raise UsageError(f"{origin}: not a qcheck recipe (expected \"schema\": "
                             f"\"{RECIPE_SCHEMA}\")")
        target = data.get("target")
        if target not in PLANNABLE:
            raise UsageError(f"{origin}: target {target!r} cannot take a recipe; valid: "
                             f"{', '.join(PLANNABLE)}")
        layers = data.get("layers", {})
        valid = ", ".join(c.value for c in Choice)
        if not isinstance(layers, dict):
            raise UsageError(f"{origin}: \"layers\" must map layer names to {valid}")
        quantizer = data.get("quantizer", CONVERTER)
        if quantizer not in (CONVERTER, AEQ):
            raise UsageError(f"{origin}: quantizer {quantizer!r}; valid: {CONVERTER}, {AEQ}")
        recipe = cls(str(target), calibration_method=str(data.get("calibration_method",
                                                                  "minmax")),
                     quantizer=str(quantizer))
        if recipe.calibration_method not in converters.CALIBRATION_METHODS:
            raise UsageError(f"{origin}: calibration_method {recipe.calibration_method!r}; "
                             f"valid: {', '.join(converters.CALIBRATION_METHODS)}")
        for name, value in layers.items():
            if value not in {c.value for c in Choice}:
                raise UsageError(f"{origin}: layer {name!r}: {value!r} is not one of {valid}")
            recipe = recipe.with_choice(str(name), Choice(value))
        return recipe


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """A recipe file as ``qcheck plan`` writes it (``recipe.json``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"--recipe {path}: cannot read: {exc}") from None
    return Recipe.from_dict(data, f"--recipe {path}")
