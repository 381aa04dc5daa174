"""Data-free cross-layer equalization (Nagel et al., "Data-Free Quantization Through Weight
Equalization and Bias Correction", ICCV 2019) on the Keras weights.

For a pair of weighted layers joined by a positively homogeneous activation (ReLU or none),
channel ``i`` of the first can be divided by ``s_i`` and the matching input channel of the second
multiplied by ``s_i`` without changing the function. Choosing ``s_i = sqrt(r1_i / r2_i)`` makes
both layers' per-channel weight ranges equal, so one per-tensor scale suits every channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from converters.graph import output_paths
from qcheck.analyze.layers import LayerFacts, layer_facts

__all__ = ["EqualizedPair", "equalization_pairs", "equalize"]

_WEIGHTED = ("Conv2D", "DepthwiseConv2D", "Dense", "Conv1D")
_HOMOGENEOUS = ("relu", "linear", None)
ITERATIONS = 8


@dataclass(frozen=True)
class EqualizedPair:
    first: str
    second: str
    ratio_before: float  # largest / smallest per-channel range of ``first``
    ratio_after: float


def _activation(layer: Any) -> str | None:
    config = layer.get_config()
    activation = config.get("activation")
    if isinstance(activation, dict):
        activation = activation.get("config", {}).get("name") or activation.get("class_name")
    if type(layer).__name__ == "ReLU":
        plain = config.get("max_value") is None and not config.get("negative_slope") \
            and not config.get("threshold")
        return "relu" if plain else "clipped"
    return activation


def equalization_pairs(model: Any) -> list[tuple[LayerFacts, LayerFacts]]:
    """(first, second) layer pairs whose channel scaling commutes with what joins them
    (nested models opened up; layers named by path)."""
    facts = layer_facts(model)
    consumers: dict[str, list[LayerFacts]] = {}
    for item in facts:
        for source in item.inbound:
            consumers.setdefault(source, []).append(item)
    outputs = set(output_paths(model))
    pairs = []
    for first in facts:
        if first.kind not in _WEIGHTED or _activation(first.layer) not in _HOMOGENEOUS:
            continue
        if first.name in outputs or _grouped(first.layer):
            continue
        following = consumers.get(first.name, [])
        if len(following) == 1 and following[0].kind in ("ReLU", "Activation") \
                and _activation(following[0].layer) == "relu" \
                and following[0].name not in outputs:
            following = consumers.get(following[0].name, [])
        if len(following) == 1 and following[0].kind in _WEIGHTED \
                and not _grouped(following[0].layer):
            pairs.append((first, following[0]))
    return pairs


def _grouped(layer: Any) -> bool:
    return getattr(layer, "groups", 1) not in (1, None)


def _out_ranges(layer: Any, kernel: np.ndarray) -> np.ndarray:
    if type(layer).__name__ == "DepthwiseConv2D":
        return np.abs(kernel).max(axis=(0, 1)).reshape(-1)  # (in, mult) → in·mult channels
    return np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0)


def _in_ranges(layer: Any, kernel: np.ndarray) -> np.ndarray:
    if type(layer).__name__ == "Dense":
        return np.abs(kernel).max(axis=1)
    axis = kernel.ndim - 2  # (…, in, out) for convolutions, (…, in, mult) for depthwise
    other = tuple(a for a in range(kernel.ndim) if a != axis)
    return np.abs(kernel).max(axis=other)


def _scale_out(layer: Any, weights: list[np.ndarray], scale: np.ndarray) -> None:
    kernel = weights[0]
    if type(layer).__name__ == "DepthwiseConv2D":
        weights[0] = kernel / scale.reshape(kernel.shape[2], kernel.shape[3])
    else:
        weights[0] = kernel / scale
    if len(weights) > 1:
        weights[1] = weights[1] / scale


def _scale_in(layer: Any, weights: list[np.ndarray], scale: np.ndarray) -> None:
    kernel = weights[0]
    if type(layer).__name__ == "Dense":
        weights[0] = kernel * scale[:, None]
        return
    shape = [1] * kernel.ndim
    shape[kernel.ndim - 2] = scale.size
    weights[0] = kernel * scale.reshape(shape)


def equalize(model: Any, iterations: int = ITERATIONS) -> tuple[Any, list[EqualizedPair]]:
    """A copy of ``model`` with every equalizable pair's channel ranges balanced."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    pairs = equalization_pairs(copy)
    before = {first.name: _spread(_out_ranges(first.layer, np.asarray(
        first.layer.get_weights()[0]))) for first, _ in pairs}
    for _ in range(iterations):
        for first, second in pairs:
            _balance(first.layer, second.layer)
    report = [EqualizedPair(first.name, second.name, before[first.name],
                            _spread(_out_ranges(first.layer,
                                                np.asarray(first.layer.get_weights()[0]))))
              for first, second in pairs]
    return copy, report


def _balance(first: Any, second: Any) -> None:
    w1 = [np.asarray(w) for w in first.get_weights()]
    w2 = [np.asarray(w) for w in second.get_weights()]
    r1, r2 = _out_ranges(first, w1[0]), _in_ranges(second, w2[0])
    if r1.size != r2.size:
        return
    valid = (r1 > 0) & (r2 > 0)
    scale = np.ones_like(r1)
    scale[valid] = np.sqrt(r1[valid] / r2[valid])
    _scale_out(first, w1, scale)
    _scale_in(second, w2, scale)
    first.set_weights(w1)
    second.set_weights(w2)


def _spread(ranges: np.ndarray) -> float:
    live = ranges[ranges > 0]
    return float(live.max() / live.min()) if live.size else 1.0
