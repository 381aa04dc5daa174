"""A Keras model as a flat graph of layers, nested models opened up, each layer named by its
path (``backbone/block_16_project``).

Converting and analysing walk the same graph: the export runs every layer under an absolute
TensorFlow name scope equal to its path, so a converter's tensor and node names begin with
exactly the Keras layer's path, and nothing has to be guessed from ``conv2d_1`` suffixes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FlatLayer", "LayerCall", "flatten", "input_names", "is_graph_model", "nested_model",
           "output_paths", "run_flat", "takes_training"]

# (path, layer, args, kwargs) -> the layer's output
LayerCall = Callable[[str, Any, tuple[Any, ...], dict[str, Any]], Any]


@dataclass(frozen=True)
class FlatLayer:
    path: str
    layer: Any = field(compare=False, repr=False)
    inbound: tuple[str, ...]  # paths of the layers (or the model input) it reads


def nested_model(layer: Any) -> Any | None:
    """The functional graph behind a layer that is itself a model (functional or
    sequential), else ``None``."""
    inner = getattr(layer, "_functional", None)  # a built Sequential
    if inner is not None and hasattr(inner, "_run_through_graph"):
        return inner
    if type(layer).__name__ == "Functional" or (
            hasattr(layer, "_run_through_graph") and hasattr(layer, "_operations")
            and type(layer).__name__ != "Sequential"):
        return layer
    return None


def is_graph_model(model: Any) -> bool:
    """Whether the model's layers can be walked (functional or sequential; not subclassed)."""
    return nested_model(model) is not None


def run_flat(model: Any, inputs: Any, call: LayerCall, prefix: str = "") -> Any:
    """Run the model's graph with every non-model layer going through ``call``."""
    graph = nested_model(model)
    assert graph is not None, "only functional and sequential models have a graph to walk"

    def wrap(layer: Any) -> Callable[..., Any]:
        inner = nested_model(layer)
        path = prefix + layer.name

        def operation(*args: Any, **kwargs: Any) -> Any:
            if inner is not None:
                return run_flat(inner, args[0] if len(args) == 1 else list(args), call,
                                path + "/")
            return call(path, layer, args, kwargs)
        return operation

    outputs = graph._run_through_graph(inputs, operation_fn=wrap)
    return outputs


def flatten(model: Any) -> list[FlatLayer]:
    """Every layer that is not a model or an input, in the order the graph runs them."""
    found: list[FlatLayer] = []
    _flatten(nested_model(model), "", None, found)
    return found


def input_names(model: Any) -> list[str] | None:
    """A model's inputs by their InputLayer names (``mask``, ``input_layer_1``: what its
    config and ``model.summary()`` call them), in its order; None for a model without
    declared inputs (subclassed)."""
    try:
        return [t._keras_history[0].name for t in model.inputs]
    except (AttributeError, TypeError, ValueError):
        return None


def output_paths(model: Any) -> list[str]:
    """The paths of the layers that produce the model's outputs."""
    return _flatten(nested_model(model), "", None, [])


def _flatten(graph: Any, prefix: str, feeds: list[str] | None, found: list[FlatLayer]
             ) -> list[str]:
    """Adds ``graph``'s layers to ``found``; returns the paths its outputs come from."""
    produced: dict[str, list[str]] = {}
    for index, tensor in enumerate(graph.inputs):
        name = tensor._keras_history[0].name
        produced[name] = [feeds[index] if feeds else prefix + name]
    for layer in getattr(graph, "operations", graph.layers):  # keras.ops calls are nodes too
        if type(layer).__name__ == "InputLayer":
            continue
        sources = [produced[history[0].name][min(history[2], len(produced[history[0].name])
                                                 - 1)]
                   for history in _histories(layer) if history[0].name in produced]
        inner = nested_model(layer)
        if inner is not None:
            produced[layer.name] = _flatten(inner, f"{prefix}{layer.name}/", sources, found)
        else:
            found.append(FlatLayer(prefix + layer.name, layer, tuple(sources)))
            produced[layer.name] = [prefix + layer.name]
    return [produced[t._keras_history[0].name][min(t._keras_history[2],
                                                   len(produced[t._keras_history[0].name]) - 1)]
            for t in graph.outputs]


def takes_training(operation: Any) -> bool:
    """Whether an operation is a layer whose call takes ``training`` (a ``keras.ops`` call in
    the graph, such as ``ops.max``, takes no such argument)."""
    return bool(getattr(operation, "_call_has_training_arg", False))


def _histories(layer: Any) -> list[tuple[Any, int, int]]:
    found = []
    for node in getattr(layer, "_inbound_nodes", []):
        for tensor in node.input_tensors:
            history = getattr(tensor, "_keras_history", None)
            if history is not None:
                found.append(tuple(history))
    return found
