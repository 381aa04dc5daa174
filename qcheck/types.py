"""The vocabulary every stage shares: causes, actions, severities, artifact kinds, ranges,
targets, and the descriptions of a model and its images.

What a check produced, with its verdicts, is ``qcheck.results``; how numbers become JSON,
``qcheck.serialize``; the limits a result is judged by, ``qcheck.limits``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from converters.types import Format, Precision, TargetSpec
from qcheck.errors import UsageError

__all__ = [
    "ARTIFACTS_DIR",
    "REPORT_SCHEMA",
    "Action",
    "ArtifactKind",
    "Cause",
    "Format",
    "ImageSummary",
    "InputRange",
    "ModelInfo",
    "Precision",
    "Severity",
    "SkippedImage",
    "TargetSpec",
    "TensorInfo",
]

REPORT_SCHEMA = "qcheck.report/1"
ARTIFACTS_DIR = "artifacts"  # artifacts/<target>.tflite|.onnx in the output folder


class Cause(StrEnum):
    WEIGHT_ROUNDING = "weight_rounding"
    ACTIVATION_RANGE = "activation_range"
    CHANNEL_MIXING = "channel_mixing"
    CALIBRATION_COVERAGE = "calibration_coverage"
    INPUT_RANGE = "input_range"
    FP16_RANGE = "fp16_range"


class Action(StrEnum):
    PER_CHANNEL_WEIGHTS = "per_channel_weights"
    EQUALIZE_CHANNELS = "equalize_channels"
    KEEP_FLOAT = "keep_float"
    INT16_ACTIVATIONS = "int16_activations"
    EXTEND_CALIBRATION = "extend_calibration"
    FIX_INPUT_RANGE = "fix_input_range"
    ADD_CHANNEL_MIXING = "add_channel_mixing"
    QUANTIZATION_AWARE_TRAINING = "quantization_aware_training"
    SWITCH_QUANTIZER = "switch_quantizer"  # an addition: the other quantizer of the format


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"


class ArtifactKind(StrEnum):
    TINT = "tint"
    FRINGING = "fringing"
    SPECKLE = "speckle"
    BANDING = "banding"
    CLIPPING = "clipping"
    NONFINITE = "nonfinite"  # NaN or infinite values where the float model has numbers


@dataclass(frozen=True)
class InputRange:
    """The value range the model expects for pixels (and produces, for image outputs)."""

    low: float
    high: float

    @classmethod
    def parse(cls, text: str, option: str = "--input-range") -> InputRange:
        choices = {"0:1": (0.0, 1.0), "0:255": (0.0, 255.0), "-1:1": (-1.0, 1.0)}
        if text not in choices:
            raise UsageError(
                f"{option} {text!r} is not supported; choose one of {', '.join(choices)}"
            )
        return cls(*choices[text])

    @property
    def span(self) -> float:
        return self.high - self.low

    def __str__(self) -> str:
        return f"{self.low:g}:{self.high:g}"


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int | None, ...]
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorInfo:
        return cls(data["name"], tuple(data["shape"]), data["dtype"])


@dataclass(frozen=True)
class ModelInfo:
    path: str
    sha256: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    # The output layer's final activation ("sigmoid", "tanh", "softmax", …), when there is one.
    head: str | None = None
    # Every layer's path (``backbone/conv2d`` inside a nested model), to name converter nodes
    # by without loading the model; empty for a subclassed model.
    layers: tuple[str, ...] = ()
    # Each output's final activation, for a model with several outputs (``head`` is the
    # first's).
    heads: tuple[str | None, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        return cls(data["path"], data["sha256"],
                   tuple(TensorInfo.from_dict(t) for t in data["inputs"]),
                   tuple(TensorInfo.from_dict(t) for t in data["outputs"]),
                   data.get("head"), tuple(str(p) for p in data.get("layers", ())),
                   tuple(data.get("heads", ())))

    def cached(self) -> dict[str, Any]:
        """What the cache keeps of a model's description (``to_dict`` plus its head and layer
        paths)."""
        return {**self.to_dict(), "head": self.head, "layers": list(self.layers),
                "heads": list(self.heads)}

    @property
    def image_index(self) -> int:
        """Which input the images feed: the first with 3 channels (RGB), else the first with
        1 (lightness); the others are fed with ``--feed``."""
        for channels in (3, 1):
            for index, tensor in enumerate(self.inputs):
                if len(tensor.shape) == 4 and tensor.shape[-1] == channels:
                    return index
        return 0

    @property
    def image_input(self) -> TensorInfo:
        return self.inputs[self.image_index]

    @property
    def extra_inputs(self) -> tuple[TensorInfo, ...]:
        """The inputs other than the image input, in the model's order."""
        return tuple(t for i, t in enumerate(self.inputs) if i != self.image_index)

    @property
    def several_outputs(self) -> bool:
        return len(self.outputs) > 1

    @property
    def named_io(self) -> bool:
        """Whether the artifacts name every input and output as the Keras model does (a model
        with several of either); a one-input, one-output artifact names its input ``image``."""
        return len(self.inputs) > 1 or len(self.outputs) > 1

    def head_of(self, index: int) -> str | None:
        if self.heads and index < len(self.heads):
            return self.heads[index]
        return self.head if index == 0 else None

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return self.image_input.shape

    @property
    def input_hw(self) -> tuple[int | None, int | None]:
        return self.input_shape[1], self.input_shape[2]


@dataclass(frozen=True)
class SkippedImage:
    file: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "reason": self.reason}


@dataclass(frozen=True)
class ImageSummary:
    calibration: int
    evaluation: int
    source: str
    skipped: tuple[SkippedImage, ...] = ()
    input_size: tuple[int, int] | None = None  # (height, width) the model was fed at

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibration": self.calibration,
            "evaluation": self.evaluation,
            "source": self.source,
            "skipped": [s.to_dict() for s in self.skipped],
            "input_size": list(self.input_size) if self.input_size else None,
        }


