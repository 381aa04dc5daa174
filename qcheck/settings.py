"""How to read a model: the range its input takes, what its output is, and whose code may
run to load it. Given once per check; every stage reads it from the session."""

from __future__ import annotations

import os
from dataclasses import dataclass

from qcheck.outputs import OutputKind, parse_output_kind
from qcheck.types import InputRange

__all__ = ["ModelSettings"]

_UNIT = InputRange(0.0, 1.0)


@dataclass(frozen=True)
class ModelSettings:
    input_range: InputRange = _UNIT
    output_range: InputRange | None = None  # None: inferred (see ``qcheck.outputs``)
    output_kind: OutputKind | None = None
    # A Python file of the user's own layers and models: an explicit opt-in to run that code.
    custom_objects: str | None = None

    @classmethod
    def build(cls, input_range: str | InputRange = "0:1",
              output_range: str | InputRange | None = None,
              output_kind: str | OutputKind | None = None,
              custom_objects: str | os.PathLike[str] | None = None) -> ModelSettings:
        """Settings from what a user types (or passes to the API), each value checked."""
        return cls(
            input_range if isinstance(input_range, InputRange) else InputRange.parse(input_range),
            output_range if output_range is None or isinstance(output_range, InputRange)
            else InputRange.parse(output_range, "--output-range"),
            output_kind if output_kind is None or isinstance(output_kind, OutputKind)
            else parse_output_kind(output_kind),
            None if custom_objects is None else str(custom_objects))

    @classmethod
    def of(cls, value: str | InputRange | ModelSettings) -> ModelSettings:
        """Settings from a full description, or from just an input range."""
        if isinstance(value, ModelSettings):
            return value
        return cls(value if isinstance(value, InputRange) else InputRange.parse(value))
