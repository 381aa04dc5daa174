"""How to read a model: the range its input takes, what its output is, and whose code may
run to load it. Given once per check; every stage reads it from the session."""

from __future__ import annotations

import os
from dataclasses import dataclass

from qcheck.errors import UsageError
from qcheck.outputs import OutputKind, parse_output_kind
from qcheck.types import InputRange

__all__ = ["DEFAULT_INPUT_RANGE", "ModelSettings"]

# The one place the default is written: the API, every command, the zoo and [tool.qcheck]
# leave the range unset (None) and get this.
DEFAULT_INPUT_RANGE = "0:1"
_UNIT = InputRange.parse(DEFAULT_INPUT_RANGE)


@dataclass(frozen=True)
class ModelSettings:
    input_range: InputRange = _UNIT
    output_range: InputRange | None = None  # None: inferred (see ``qcheck.outputs``)
    output_kind: OutputKind | None = None
    # A Python file of the user's own layers and models: an explicit opt-in to run that code.
    custom_objects: str | None = None

    @classmethod
    def build(cls, input_range: str | InputRange | None = None,
              output_range: str | InputRange | None = None,
              output_kind: str | OutputKind | None = None,
              custom_objects: str | os.PathLike[str] | None = None) -> ModelSettings:
        """Settings from what a user types (or passes to the API), each value checked;
        ``None``: the default."""
        return cls(
            _UNIT if input_range is None else input_range
            if isinstance(input_range, InputRange) else InputRange.parse(input_range),
            output_range if output_range is None or isinstance(output_range, InputRange)
            else InputRange.parse(output_range, "--output-range"),
            output_kind if output_kind is None or isinstance(output_kind, OutputKind)
            else parse_output_kind(output_kind),
            None if custom_objects is None else str(custom_objects))

    @classmethod
    def given(cls, settings: ModelSettings | None, input_range: str | InputRange | None,
              output_range: str | InputRange | None, output_kind: str | OutputKind | None,
              custom_objects: str | os.PathLike[str] | None) -> ModelSettings:
        """The API's rule: a ``settings`` object, or the keyword arguments it replaces (giving
        both is a usage error, since one would silently lose)."""
        loose = (input_range, output_range, output_kind, custom_objects)
        if settings is None:
            return cls.build(*loose)
        if any(value is not None for value in loose):
            raise UsageError("give either settings= or input_range/output_range/output_kind/"
                             "custom_objects, not both")
        return settings

    @classmethod
    def of(cls, value: str | InputRange | ModelSettings) -> ModelSettings:
        """Settings from a full description, or from just an input range."""
        if isinstance(value, ModelSettings):
            return value
        return cls(value if isinstance(value, InputRange) else InputRange.parse(value))
