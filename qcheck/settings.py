"""The options of a check, one object per concern, each with its defaults here: how to read
the model (``ModelSettings``), which images (``ImageSources``) and what to run
(``RunSwitches``). The limits are ``qcheck.limits.Thresholds``. The API takes each object or,
as before, its values one by one; the command line, ``[tool.qcheck]`` and zoo manifests build
them through ``qcheck.config.FileConfig``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from qcheck.errors import UsageError
from qcheck.outputs import OutputKind, parse_output_kind
from qcheck.types import InputRange

__all__ = ["DEFAULT_INPUT_RANGE", "MAX_INPUT_SIDE", "ImageSources", "ModelSettings",
           "RunSwitches", "parse_feed", "parse_input_size"]

# The one place the default is written: the API, every command, the zoo and [tool.qcheck]
# leave the range unset (None) and get this.
DEFAULT_INPUT_RANGE = "0:1"
_UNIT = InputRange.parse(DEFAULT_INPUT_RANGE)
MAX_INPUT_SIDE = 8192


def parse_input_size(value: str | tuple[int, int] | None, option: str = "--input-size"
                     ) -> tuple[int, int] | None:
    """``"HxW"`` (or a pair) as (height, width), each side a whole number of pixels."""
    if value is None:
        return None
    parts = value.lower().split("x") if isinstance(value, str) else list(value)
    try:
        height, width = (int(str(part).strip()) for part in parts)
    except ValueError:
        height = width = 0
    if not (0 < height <= MAX_INPUT_SIDE and 0 < width <= MAX_INPUT_SIDE):
        raise UsageError(f"{option} {value!r} must be HxW, each side a whole number of pixels "
                         f"from 1 to {MAX_INPUT_SIDE} (e.g. 256x256)")
    return height, width


@dataclass(frozen=True)
class ModelSettings:
    input_range: InputRange = _UNIT
    output_range: InputRange | None = None  # None: inferred (see ``qcheck.outputs``)
    output_kind: OutputKind | None = None
    # A Python file of the user's own layers and models: an explicit opt-in to run that code.
    custom_objects: str | None = None
    # (height, width) a model with no fixed input size is converted and measured at (None:
    # its fixed size, else ``DYNAMIC_SIZE``).
    input_size: tuple[int, int] | None = None
    # A model with several inputs: what each input beyond the image input is fed
    # (``qcheck.load.feeds``), by input name.
    feeds: tuple[tuple[str, Any], ...] = ()
    # A model with several outputs: kinds declared per output name (``output_kind`` is the
    # kind of every output not named here).
    output_kinds: tuple[tuple[str, OutputKind], ...] = ()

    @classmethod
    def build(cls, input_range: str | InputRange | None = None,
              output_range: str | InputRange | None = None,
              output_kind: str | OutputKind | None = None,
              custom_objects: str | os.PathLike[str] | None = None,
              input_size: str | tuple[int, int] | None = None,
              feeds: Mapping[str, Any] | Sequence[str] | None = None) -> ModelSettings:
        """Settings from what a user types (or passes to the API), each value checked;
        ``None``: the default. ``output_kind`` may name outputs: ``depth=tensor,rgb=image``;
        ``feeds`` is ``{name: folder | number | array}`` or ``NAME=DIR|VALUE`` strings."""
        kind, per_output = _output_kinds(output_kind)
        return cls(
            _UNIT if input_range is None else input_range
            if isinstance(input_range, InputRange) else InputRange.parse(input_range),
            output_range if output_range is None or isinstance(output_range, InputRange)
            else InputRange.parse(output_range, "--output-range"),
            kind,
            None if custom_objects is None else str(custom_objects),
            parse_input_size(input_size), _feeds(feeds), per_output)

    def kind_of(self, output: str) -> OutputKind | None:
        """The kind declared for ``output`` (by name, else for every output), if any."""
        return dict(self.output_kinds).get(output, self.output_kind)

    @classmethod
    def given(cls, settings: ModelSettings | None, input_range: str | InputRange | None,
              output_range: str | InputRange | None, output_kind: str | OutputKind | None,
              custom_objects: str | os.PathLike[str] | None,
              feed: Mapping[str, Any] | None = None) -> ModelSettings:
        """The API's rule: a ``settings`` object, or the keyword arguments it replaces (giving
        both is a usage error, since one would silently lose)."""
        loose = (input_range, output_range, output_kind, custom_objects)
        if settings is None:
            return cls.build(*loose, feeds=feed)
        if any(value is not None for value in (*loose, feed)):
            raise UsageError("give either settings= or input_range/output_range/output_kind/"
                             "custom_objects/feed, not both")
        return settings

    @classmethod
    def of(cls, value: str | InputRange | ModelSettings) -> ModelSettings:
        """Settings from a full description, or from just an input range."""
        if isinstance(value, ModelSettings):
            return value
        return cls(value if isinstance(value, InputRange) else InputRange.parse(value))


def _output_kinds(text: str | OutputKind | None
                  ) -> tuple[OutputKind | None, tuple[tuple[str, OutputKind], ...]]:
    if text is None or isinstance(text, OutputKind):
        return text, ()
    if "=" not in text:
        return parse_output_kind(text), ()
    named = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, kind = part.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--output-kind {text!r}: give KIND, or NAME=KIND for each output "
                             "(e.g. depth=tensor,rgb=image)")
        try:
            named.append((name.strip(), OutputKind(kind.strip())))
        except ValueError:
            raise UsageError(f"--output-kind {part!r} is not supported; choose NAME=KIND with "
                             f"KIND one of {', '.join(k.value for k in OutputKind)}") from None
    return None, tuple(named)


def parse_feed(text: str) -> tuple[str, float | str]:
    """``NAME=DIR`` or ``NAME=VALUE`` as typed on the command line or in ``[tool.qcheck]``."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise UsageError(f"--feed {text!r} must be NAME=DIR or NAME=VALUE (e.g. mask=masks/ or "
                         "strength=0.5)")
    value = value.strip()
    try:
        return name.strip(), float(value)
    except ValueError:
        return name.strip(), value


def _feeds(given: Mapping[str, Any] | Sequence[str] | None) -> tuple[tuple[str, Any], ...]:
    if given is None:
        return ()
    if isinstance(given, Mapping):
        return tuple((str(name), value) for name, value in given.items())
    return tuple(parse_feed(text) for text in given)


@dataclass(frozen=True)
class ImageSources:
    """Calibration and evaluation images: folders, arrays, or ``None`` for the bundled set's
    halves (evaluation images are never used to calibrate)."""

    calib: Any = None
    eval: Any = None

    @classmethod
    def given(cls, images: ImageSources | None, calib: Any, eval: Any) -> ImageSources:
        if images is None:
            return cls(calib, eval)
        if calib is not None or eval is not None:
            raise UsageError("give either images= or calib/eval, not both")
        return images


@dataclass(frozen=True)
class RunSwitches:
    """What a check does beyond converting, running and comparing."""

    analysis: bool = True  # findings and attribution
    readiness: bool = True  # latency, memory, kernels, coverage, the I/O contract
    analyze_all: bool = False  # attribute every target, not only failing ones
    fix_verification: bool = True  # convert suggested fixes again and measure them
    qat: bool = False  # also verify quantization-aware training (it trains)
    cache: bool = True  # read and write the artifact cache

    @classmethod
    def given(cls, switches: RunSwitches | None, **loose: bool | None) -> RunSwitches:
        """A ``switches`` object, or the switches set one by one (``None``: the default);
        giving both is a usage error."""
        chosen = {name: value for name, value in loose.items() if value is not None}
        unknown = set(chosen) - {f.name for f in fields(cls)}
        assert not unknown, unknown
        if switches is None:
            return cls(**chosen)
        if chosen:
            raise UsageError(f"give either run= or {', '.join(sorted(chosen))}, not both")
        return switches
