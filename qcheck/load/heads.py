"""A model's final activation (its "head"), from its saved config or from the model: it tells
a sigmoid 0:1 or tanh −1:1 image apart from one in the input's range, and a softmax class map
from a 3-channel image."""

from __future__ import annotations

from typing import Any

__all__ = ["head_from_config", "head_of_model"]

_ACTIVATION_LAYERS = {"Softmax": "softmax", "ReLU": "relu", "ELU": "elu",
                      "LeakyReLU": "leaky_relu"}


def _activation(class_name: str | None, config: dict[str, Any]) -> str | None:
    if class_name in _ACTIVATION_LAYERS:
        return _ACTIVATION_LAYERS[class_name]
    activation = config.get("activation")
    if isinstance(activation, dict):
        activation = activation.get("config", {}).get("name") or activation.get("class_name")
    return activation if isinstance(activation, str) else None


def head_from_config(config: Any) -> str | None:
    """The final activation of a functional or sequential model config, looking into nested
    models; ``None`` when the config is not one this reader understands."""
    if not isinstance(config, dict):
        return None
    body = config.get("config") or {}
    layers = [layer for layer in body.get("layers", []) if isinstance(layer, dict)]
    if config.get("class_name") == "Sequential":
        last = layers[-1] if layers else None
    else:
        outputs = body.get("output_layers")
        name = outputs[0] if isinstance(outputs, list) and outputs and isinstance(
            outputs[0], str) else (outputs[0][0] if isinstance(outputs, list) and outputs
                                   and isinstance(outputs[0], list) and outputs[0] else None)
        last = next((layer for layer in layers if layer.get("name") == name
                     or (layer.get("config") or {}).get("name") == name), None)
    if last is None:
        return None
    if last.get("class_name") in ("Functional", "Sequential", "Model"):
        return head_from_config(last)
    return _activation(last.get("class_name"), last.get("config") or {})


def head_of_model(model: Any, index: int = 0) -> str | None:
    """The final activation of an in-memory model's output ``index`` (functional, sequential
    or subclassed)."""
    from converters.graph import flatten, is_graph_model, output_paths

    if not is_graph_model(model):
        return None
    wanted = output_paths(model)[index]
    for flat in flatten(model):
        if flat.path == wanted:
            layer = flat.layer
            return _activation(type(layer).__name__, layer.get_config())
    return None
