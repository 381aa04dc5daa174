"""The model as the analyzers see it: its layers by Keras name, and forward passes with hooks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qcheck.numerics import ActivationKind, fake_quantize_affine, tensorflow_ops

__all__ = ["ActivationStats", "Kernel", "LayerFacts", "activation_stats", "consumers_by_name",
           "forward", "inbound_names", "layer_facts", "load_stats", "record_stats", "save_stats",
           "traced_forward"]

Hook = Callable[[Any, Any], Any]  # (layer, output tensor) -> output tensor


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
    for variable in layer.weights:
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


def inbound_names(layer: Any) -> list[str]:
    """The names of the layers whose outputs ``layer`` reads, in call order."""
    inbound: list[str] = []
    for node in getattr(layer, "_inbound_nodes", []):
        for tensor in node.input_tensors:
            history = getattr(tensor, "_keras_history", None)
            if history is not None:
                inbound.append(history[0].name)
    return inbound


def consumers_by_name(model: Any) -> dict[str, list[Any]]:
    """For each layer name, the layers that read its output."""
    found: dict[str, list[Any]] = {}
    for layer in model.layers:
        for name in inbound_names(layer):
            found.setdefault(name, []).append(layer)
    return found


def layer_facts(model: Any) -> list[LayerFacts]:
    """Every layer but the inputs, in the order the graph runs them."""
    facts = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        inbound = inbound_names(layer)
        in_shape = _shape(getattr(layer, "input", None))
        out_shape = _shape(getattr(layer, "output", None))
        facts.append(LayerFacts(
            name=layer.name, kind=type(layer).__name__, inbound=tuple(inbound),
            kernels=_kernels(layer),
            biases=tuple(v for v in layer.weights
                         if str(getattr(v, "path", v.name)).endswith("bias")),
            in_channels=in_shape[-1] if in_shape else None,
            out_channels=out_shape[-1] if out_shape else None,
            layer=layer,
        ))
    return facts


def _shape(tensor: Any) -> tuple[Any, ...] | None:
    if tensor is None or isinstance(tensor, list | tuple):
        return None
    try:
        return tuple(tensor.shape)
    except (AttributeError, ValueError):
        return None


def forward(model: Any, inputs: np.ndarray, hook: Hook | None = None) -> np.ndarray:
    """Run the functional graph eagerly, passing each layer's output through ``hook``."""
    if hook is None:
        return np.asarray(model(inputs, training=False))

    def wrap(layer: Any) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            kwargs.pop("training", None)
            return hook(layer, _call(layer, args, kwargs))
        return call

    outputs = model._run_through_graph(inputs, operation_fn=wrap)
    if isinstance(outputs, list | tuple):
        outputs = outputs[0]
    return np.asarray(outputs)


def traced_forward(model: Any, hooked: dict[str, int], kind: ActivationKind | None,
                   shadows: dict[str, Any]) -> Any:
    """A ``tf.function`` of the whole model where, per sample, each hooked layer can run with
    its rounded weights (its ``shadows`` copy) and have its output clipped to the calibrated
    range and fake-quantized as ``kind``.

    Call it as ``f(x, weights, act, clip, scale, zero, low, high)``: the three masks are
    (batch, hooked layers); the other four hold one value per hooked layer.
    """
    import tensorflow as tf

    ops = tensorflow_ops()

    def quantized(y: Any, scale: Any, zero: Any) -> Any:
        return fake_quantize_affine(y, scale, zero, kind, ops)

    def run(x: Any, weights: Any, act: Any, clip: Any, scale: Any, zero: Any, low: Any,
            high: Any) -> Any:
        def wrap(layer: Any) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                kwargs.pop("training", None)
                y = _call(layer, args, kwargs)
                k = hooked.get(layer.name)
                if k is None or isinstance(y, list | tuple):
                    return y
                shape = [-1] + [1] * (len(y.shape) - 1)
                shadow = shadows.get(layer.name)
                rounded = tf.reshape(weights[:, k], shape) > 0
                clipped = tf.reshape(clip[:, k], shape) > 0
                acting = tf.reshape(act[:, k], shape) > 0

                def changed(y: Any = y) -> Any:
                    if shadow is not None:
                        y = tf.where(rounded, _call(shadow, args, kwargs), y)
                    y = tf.where(clipped, tf.clip_by_value(y, low[k], high[k]), y)
                    if kind is not None:
                        y = tf.where(acting, quantized(y, scale[k], zero[k]), y)
                    return y

                # One branch per layer, taken only when some sample changes it here.
                anything = tf.reduce_any(weights[:, k] + act[:, k] + clip[:, k] > 0)
                return tf.cond(anything, changed, lambda: y)
            return call

        outputs = model._run_through_graph(x, operation_fn=wrap)
        return outputs[0] if isinstance(outputs, list | tuple) else outputs

    shape = (None, *tuple(model.inputs[0].shape)[1:])
    mask = tf.TensorSpec((None, len(hooked)), tf.float32)
    per_layer = tf.TensorSpec((len(hooked),), tf.float32)
    return tf.function(run, autograph=False, input_signature=[
        tf.TensorSpec(shape, tf.float32), mask, mask, mask, per_layer, per_layer, per_layer,
        per_layer])


def _call(layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Inference through a built layer's ``call``: Keras's ``__call__`` wrapper (input checks,
    name scopes, autocasting) costs milliseconds per layer, which dominates hundreds of passes."""
    if getattr(layer, "built", False) and not kwargs and type(layer).__name__ not in (
            "Functional", "Sequential", "Model"):
        try:
            return layer.call(*args)
        except TypeError:
            pass
    return layer(*args, **kwargs)


@dataclass
class ActivationStats:
    """Per-layer output ranges over some images (what min/max calibration records)."""

    low: float = np.inf
    high: float = -np.inf
    channel_low: np.ndarray | None = None
    channel_high: np.ndarray | None = None

    def update(self, values: np.ndarray) -> None:
        flat = values.reshape(-1, values.shape[-1]) if values.ndim > 1 else values[:, None]
        low, high = flat.min(axis=0), flat.max(axis=0)
        self.low = min(self.low, float(low.min()))
        self.high = max(self.high, float(high.max()))
        self.channel_low = low if self.channel_low is None else np.minimum(self.channel_low, low)
        self.channel_high = high if self.channel_high is None else np.maximum(
            self.channel_high, high)

    @property
    def absmax(self) -> float:
        return max(abs(self.low), abs(self.high))


def activation_stats(model: Any, batches: Iterable[np.ndarray]
                     ) -> tuple[ActivationStats, dict[str, ActivationStats]]:
    """Ranges of the model input and of every layer's output over ``batches``."""
    _, input_stats, stats = record_stats(model, batches)
    return input_stats, stats


def record_stats(model: Any, batches: Iterable[np.ndarray]
                 ) -> tuple[np.ndarray, ActivationStats, dict[str, ActivationStats]]:
    """The model's outputs and, in the same pass, every layer's range."""
    stats: dict[str, ActivationStats] = {}
    input_stats = ActivationStats()
    outputs = []

    def record(layer: Any, output: Any) -> Any:
        if not isinstance(output, list | tuple):
            stats.setdefault(layer.name, ActivationStats()).update(np.asarray(output))
        return output

    for batch in batches:
        input_stats.update(batch)
        outputs.append(forward(model, batch, record))
    return np.concatenate(outputs), input_stats, stats


def save_stats(path: Any, input_stats: ActivationStats, stats: dict[str, ActivationStats]
               ) -> None:
    arrays: dict[str, np.ndarray] = {}
    for name, item in {"": input_stats, **{f"layer:{k}": v for k, v in stats.items()}}.items():
        arrays[f"{name}|range"] = np.array([item.low, item.high])
        if item.channel_low is not None and item.channel_high is not None:
            arrays[f"{name}|low"] = item.channel_low
            arrays[f"{name}|high"] = item.channel_high
    np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy stubs type **kwds as flags


def load_stats(path: Any) -> tuple[ActivationStats, dict[str, ActivationStats]]:
    found: dict[str, ActivationStats] = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            name, _, part = key.rpartition("|")
            item = found.setdefault(name, ActivationStats())
            if part == "range":
                item.low, item.high = float(data[key][0]), float(data[key][1])
            elif part == "low":
                item.channel_low = data[key]
            else:
                item.channel_high = data[key]
    input_stats = found.pop("", ActivationStats())
    return input_stats, {k.removeprefix("layer:"): v for k, v in found.items()}
