"""What a model's output is, and in which range it is read: declared by the user, or inferred
from the output's shape and the model's final activation, and always said in the report.

- ``image``: a 3-channel (colour) or 1-channel (lightness) picture, compared in CIELAB.
- ``classes``: a class per pixel (a class map: softmax, or a channel axis that is neither 1
  nor 3) or per image (a classifier's logits or probabilities), compared by arg-max.
- ``tensor``: anything else, compared by signal-to-noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from qcheck.errors import UsageError
from qcheck.types import InputRange, ModelInfo

__all__ = ["OutputKind", "OutputSpec", "describe_output", "parse_output_kind"]

# Final activations whose output range is known whatever the input range.
_HEAD_RANGES = {"sigmoid": "0:1", "hard_sigmoid": "0:1", "tanh": "-1:1"}


class OutputKind(StrEnum):
    IMAGE = "image"
    CLASSES = "classes"
    TENSOR = "tensor"


def parse_output_kind(text: str) -> OutputKind:
    try:
        return OutputKind(text)
    except ValueError:
        raise UsageError(f"--output-kind {text!r} is not supported; choose one of "
                         f"{', '.join(k.value for k in OutputKind)}") from None


@dataclass(frozen=True)
class OutputSpec:
    kind: OutputKind
    range: InputRange  # how image outputs are read (the input range for other kinds)
    rank: int
    channels: int | None
    reason: str  # why qcheck reads the output this way, said in the report
    name: str | None = None  # which output, for a model with several (None: the only one)

    @property
    def is_colour(self) -> bool:
        return self.kind is OutputKind.IMAGE and self.channels == 3

    @property
    def is_lightness(self) -> bool:
        return self.kind is OutputKind.IMAGE and self.channels == 1

    @property
    def is_class_map(self) -> bool:
        return self.kind is OutputKind.CLASSES and self.rank == 4

    @property
    def is_classifier(self) -> bool:
        return self.kind is OutputKind.CLASSES and self.rank != 4

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "range": str(self.range), "reason": self.reason}


def describe_output(info: ModelInfo, input_range: InputRange, *,
                    kind: OutputKind | None = None, value_range: InputRange | None = None,
                    index: int | None = None) -> OutputSpec:
    """Output ``index`` (None: the only one) as declared (``kind``, ``value_range``), the rest
    inferred."""
    shape = info.outputs[index or 0].shape
    rank, channels = len(shape), shape[-1] if len(shape) > 1 else None
    head = info.head_of(index or 0)
    inferred_kind, why_kind = _kind(rank, channels, head)
    chosen = kind or inferred_kind
    reasons = [f"declared {chosen.value}" if kind else why_kind]
    if chosen is OutputKind.IMAGE and rank == 4 and channels not in (1, 3):
        raise UsageError(f"--output-kind image needs 1 or 3 output channels; this output has "
                         f"{channels}")
    if value_range is not None:
        chosen_range, why_range = value_range, "declared range"
    elif head in _HEAD_RANGES:
        chosen_range = InputRange.parse(_HEAD_RANGES[head])
        why_range = f"range from the final {head}"
    else:
        chosen_range, why_range = input_range, "the input range"
    if chosen is OutputKind.IMAGE:
        reasons.append(f"read in {chosen_range} ({why_range})")
    name = None if index is None else info.outputs[index].name
    return OutputSpec(chosen, chosen_range, rank, channels, "; ".join(reasons), name)


def _kind(rank: int, channels: int | None, head: str | None) -> tuple[OutputKind, str]:
    if rank == 4 and head == "softmax":
        return OutputKind.CLASSES, f"a class map ({channels} classes, final softmax)"
    if rank == 4 and channels == 3:
        return OutputKind.IMAGE, "an RGB image (3 channels)"
    if rank == 4 and channels == 1:
        return OutputKind.IMAGE, "a 1-channel image (lightness)"
    if rank == 4:
        return OutputKind.CLASSES, f"a class map ({channels} channels, not an image's 1 or 3)"
    if rank == 2 and (channels or 0) > 1:
        return OutputKind.CLASSES, f"a classifier ({channels} classes)"
    return OutputKind.TENSOR, f"a tensor of rank {rank}"
