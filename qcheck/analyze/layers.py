"""The model as the analyzers see it: every layer by its path (nested models opened up),
what it reads, and its weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from converters.graph import flatten, output_paths

__all__ = ["Kernel", "LayerFacts", "layer_facts", "output_layer"]


@dataclass(frozen=True)
class Kernel:
    """A weight tensor and the axes that index its output channels."""

    variable: Any
    channel_axes: tuple[int, ...]

    def per_channel_absmax(self) -> np.ndarray:
        values = np.abs(np.asarray(self.variable))
        other = tuple(a for a in range(values.ndim) if a not in self.channel_axes)
        return values.max(axis=other).reshape(-1)


@dataclass(frozen=True)
class LayerFacts:
    name: str
    kind: str
    inbound: tuple[str, ...]
    kernels: tuple[Kernel, ...] = ()
    biases: tuple[Any, ...] = ()
    in_channels: int | None = None
    out_channels: int | None = None
    layer: Any = field(default=None, compare=False, repr=False)

    @property
    def weighted(self) -> bool:
        return bool(self.kernels)

    @property
    def depthwise(self) -> bool:
        return self.kind in ("DepthwiseConv2D", "DepthwiseConv1D") or (
            getattr(self.layer, "groups", 1) not in (1, None))


def _kernels(layer: Any) -> tuple[Kernel, ...]:
    kind = type(layer).__name__
    found = []
    for variable in getattr(layer, "weights", ()):  # a keras.ops node has none
        path = getattr(variable, "path", variable.name)
        if not str(path).endswith("kernel"):
            continue
        rank = len(variable.shape)
        if "depthwise" in str(path).split("/")[-1] or kind.startswith("DepthwiseConv"):
            axes: tuple[int, ...] = (rank - 2, rank - 1)  # (…, in, multiplier)
        elif kind.endswith("Transpose"):
            axes = (rank - 2,)
        else:
            axes = (rank - 1,)
        found.append(Kernel(variable, axes))
    return tuple(found)


def layer_facts(model: Any) -> list[LayerFacts]:
    """Every layer but the inputs and the models around them, in the order the graph runs
    them, named by path."""
    facts = []
    for flat in flatten(model):
        layer = flat.layer
        in_shape = _shape(getattr(layer, "input", None))
        out_shape = _shape(getattr(layer, "output", None))
        facts.append(LayerFacts(
            name=flat.path, kind=type(layer).__name__, inbound=flat.inbound,
            kernels=_kernels(layer),
            biases=tuple(v for v in getattr(layer, "weights", ())
                         if str(getattr(v, "path", v.name)).endswith("bias")),
            in_channels=in_shape[-1] if in_shape else None,
            out_channels=out_shape[-1] if out_shape else None,
            layer=layer,
        ))
    return facts


def output_layer(model: Any) -> str:
    """The path of the layer whose output is the model's (first) output."""
    return output_paths(model)[0]


def _shape(tensor: Any) -> tuple[Any, ...] | None:
    if tensor is None or isinstance(tensor, list | tuple):
        return None
    try:
        return tuple(tensor.shape)
    except (AttributeError, ValueError):
        return None


