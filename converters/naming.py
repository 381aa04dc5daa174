"""Map Keras layer names onto the tensor and node names converters give them.

TensorFlow scopes ops as ``<model>_1/<layer>_1/Conv2D`` (with or without the ``_N`` suffix);
TFLite fuses several into ``a;b;c`` tensor names and tf2onnx keeps the scopes in node names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["matching_names"]


def _pattern(layer: str) -> re.Pattern[str]:
    return re.compile(rf"(^|[/;]){re.escape(layer)}(_\d+)?(/|;|:|$)")


def matching_names(layers: Iterable[str], names: Iterable[str]) -> list[str]:
    """The converter names that belong to any of the Keras ``layers``."""
    patterns = [_pattern(layer) for layer in layers]
    return [name for name in names if any(p.search(name) for p in patterns)]
