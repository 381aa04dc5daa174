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

from qcheck.analyze.graph import consumers_by_name

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


def equalization_pairs(model: Any) -> list[tuple[Any, Any]]:
    """(first, second) layer pairs whose channel scaling commutes with what joins them."""
    consumers = consumers_by_name(model)
    outputs = {t._keras_history[0].name for t in model.outputs}
    pairs = []
    for layer in model.layers:
        if type(layer).__name__ not in _WEIGHTED or _activation(layer) not in _HOMOGENEOUS:
            continue
        if layer.name in outputs or getattr(layer, "groups", 1) not in (1, None):
            continue
        following = consumers.get(layer.name, [])
        if len(following) == 1 and type(following[0]).__name__ in ("ReLU", "Activation") \
                and _activation(following[0]) == "relu" and following[0].name not in outputs:
            following = consumers.get(following[0].name, [])
        if len(following) == 1 and type(following[0]).__name__ in _WEIGHTED \
                and getattr(following[0], "groups", 1) in (1, None):
            pairs.append((layer, following[0]))
    return pairs


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
    before = {}
    for first, _ in pairs:
        ranges = _out_ranges(first, np.asarray(first.get_weights()[0]))
        before[first.name] = _spread(ranges)
    for _ in range(iterations):
        for first, second in pairs:
            w1 = [np.asarray(w) for w in first.get_weights()]
            w2 = [np.asarray(w) for w in second.get_weights()]
            r1, r2 = _out_ranges(first, w1[0]), _in_ranges(second, w2[0])
            if r1.size != r2.size:
                continue
            valid = (r1 > 0) & (r2 > 0)
            scale = np.ones_like(r1)
            scale[valid] = np.sqrt(r1[valid] / r2[valid])
            _scale_out(first, w1, scale)
            _scale_in(second, w2, scale)
            first.set_weights(w1)
            second.set_weights(w2)
    report = [EqualizedPair(first.name, second.name, before[first.name],
                            _spread(_out_ranges(first, np.asarray(first.get_weights()[0]))))
              for first, second in pairs]
    return copy, report


def _spread(ranges: np.ndarray) -> float:
    live = ranges[ranges > 0]
    return float(live.max() / live.min()) if live.size else 1.0
