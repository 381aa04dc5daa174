"""Map Keras layer paths onto the tensor and node names converters give them.

The export runs every layer under an absolute name scope equal to its path
(``converters.graph``), so a converter name belongs to a layer exactly when it is the path or
begins with the path and a slash. TFLite joins fused tensors' names with ``;``; each part is
a name of its own. ``conv2d`` never matches ``conv2d_8``.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from typing import Any

__all__ = ["belongs_to", "matching_names", "onnx_node_names"]


def belongs_to(layer: str, name: str) -> bool:
    """Whether the converter name ``name`` (or one of its ``;`` parts) is ``layer``'s."""
    return any(part == layer or part.startswith(f"{layer}/") for part in name.split(";"))


def matching_names(layers: Iterable[str], names: Iterable[str]) -> list[str]:
    """The converter names that belong to any of the Keras ``layers``."""
    wanted = list(layers)
    return [name for name in names if any(belongs_to(layer, name) for layer in wanted)]


def onnx_node_names(node: Any, constants: Container[str]) -> list[str]:
    """The names an ONNX node is known by: its own, its outputs' and its constant inputs'.
    tf2onnx renames some nodes (``Conv__25``) but their weights and outputs keep the scope."""
    return [node.name, *node.output, *(i for i in node.input if i in constants)]
