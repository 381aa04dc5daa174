"""Many simulated configurations of one model in one batched, traced forward pass.

One traced TensorFlow function runs the whole model; per-sample masks choose which layers run
with rounded weights (a shadow copy of the layer holding them) and which outputs are clipped or
fake-quantized, so up to ``batch_size`` samples of any mix of configurations share one pass.
A model the traced path cannot run falls back to eager passes, one configuration at a time.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from qcheck.analyze.forward import forward, traced_forward
from qcheck.analyze.layers import LayerFacts
from qcheck.analyze.ranges import TargetRanges
from qcheck.analyze.schemes import Scheme, quantize_kernel
from qcheck.analyze.stats import ActivationStats
from qcheck.named import (
    Batch,
    batch_length,
    batch_rows,
    concat_batches,
    model_input_names,
    ordered,
)
from qcheck.numerics import (
    ActivationKind,
    WeightKind,
    fake_quantize,
    fake_quantize_affine,
    to_float16,
)

__all__ = ["TRACES", "Config", "ConfigRunner", "shadow_layer"]


@dataclass(frozen=True)
class Config:
    """One simulated target: these layers' weights rounded, these outputs fake-quantized,
    these clipped to their calibrated range, and the model input quantized or not."""

    weights: tuple[str, ...] = ()
    activations: tuple[str, ...] = ()
    clip_only: tuple[str, ...] = ()
    quantize_input: bool = False


@dataclass(frozen=True)
class Traced:
    hooked: dict[str, int]  # layer name → its column in the per-sample masks
    function: Any


# Per model (dropped with it): traced forwards by (scheme, hooked layers); None if untraceable.
TRACES: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Traced | None]] = \
    weakref.WeakKeyDictionary()


def shadow_layer(facts: LayerFacts, scheme: Scheme) -> Any:
    """A copy of a weighted layer holding its weights as ``scheme`` stores them."""
    layer = facts.layer
    shadow = type(layer).from_config(layer.get_config())
    shadow.build(tuple(layer.input.shape))
    kernels = {id(k.variable): k for k in facts.kernels}
    biases = {id(b) for b in facts.biases}
    values = []
    for variable in layer.weights:
        value = np.asarray(variable)
        if id(variable) in kernels:
            value = quantize_kernel(value, kernels[id(variable)].channel_axes, scheme)
        elif id(variable) in biases and scheme.weights is WeightKind.FP16:
            value = to_float16(value, scheme.fp16_clamp)
        values.append(value)
    shadow.set_weights(values)
    return shadow


def fed_inputs(inputs: Batch, image_input: str, stats: ActivationStats, quantize: bool
               ) -> Batch:
    """The inputs of a configuration: the image input fake-quantized when it asks."""
    if not quantize:
        return inputs

    def quantized(images: np.ndarray) -> np.ndarray:
        return fake_quantize(images, stats.low, stats.high, ActivationKind.UINT8)

    if isinstance(inputs, Mapping):
        return {**inputs, image_input: quantized(inputs[image_input])}
    return quantized(inputs)


@dataclass
class ConfigRunner:
    """Runs configurations of ``model`` on ``inputs`` (model-range evaluation images)."""

    model: Any
    ranges: TargetRanges
    inputs: Batch  # a dict by input name for a model with several inputs
    input_stats: ActivationStats
    batch_size: int = 16  # samples per forward pass (configurations × images)
    configurations: int = 0  # run so far: what the analysis cost, in forward passes
    output_index: int | None = None  # which of several outputs (None: the only one)
    image_input: str = "image"  # the input the images feed, of several
    _range_tensors: tuple[Any, ...] | None = field(default=None, repr=False)

    @property
    def scheme(self) -> Scheme:
        return self.ranges.scheme

    @property
    def facts(self) -> list[LayerFacts]:
        return self.ranges.facts

    def outputs_each(self, configs: Sequence[Config]) -> list[np.ndarray]:
        """The outputs of each configuration, with the forward passes batched.

        One traced TensorFlow function runs the whole model; per-sample masks choose which
        layers run with rounded weights (a shadow copy of the layer holding them) and which
        outputs are clipped or fake-quantized, so up to ``batch_size`` samples of any mix of
        configurations share one pass.
        """
        self.configurations += len(configs)
        count = batch_length(self.inputs)
        per_call = max(1, self.batch_size // max(count, 1))
        traced = self._traced()
        results: list[np.ndarray] = []
        for start in range(0, len(configs), per_call):
            chunk = configs[start : start + per_call]
            if traced is None:  # a model the traced path cannot run: one at a time, eagerly
                results.extend(self.eager(config) for config in chunk)
                continue
            outputs = self._run(traced, chunk)
            results.extend(outputs[i * count : (i + 1) * count] for i in range(len(chunk)))
        return results

    def _run(self, traced: Traced, configs: Sequence[Config]) -> np.ndarray:
        import tensorflow as tf

        inputs, masks = [], []
        for config in configs:
            inputs.append(self._fed(config))
            flags = np.zeros((3, len(traced.hooked)), dtype=np.float32)
            for row, names in enumerate((config.weights, config.activations,
                                         config.clip_only)):
                for name in names:
                    if name in traced.hooked:
                        flags[row, traced.hooked[name]] = 1.0
            masks.append(np.repeat(flags[np.newaxis], batch_length(self.inputs), axis=0))
        stacked = np.concatenate(masks)
        fed = concat_batches(inputs)
        tensors = [tf.constant(a) for a in ordered(fed, model_input_names(self.model))] \
            if isinstance(fed, Mapping) else tf.constant(fed)
        outputs = traced.function(
            tensors, tf.constant(stacked[:, 0]),
            tf.constant(stacked[:, 1]), tf.constant(stacked[:, 2]), *self._ranges(traced))
        return np.asarray(outputs)

    def _fed(self, config: Config) -> Batch:
        return fed_inputs(self.inputs, self.image_input, self.input_stats, config.quantize_input)

    def _ranges(self, traced: Traced) -> tuple[Any, ...]:
        """Per hooked layer: scale, zero point and clip bounds, as the target calibrated."""
        import tensorflow as tf

        if self._range_tensors is None:
            rows = [self.ranges.quantization(name) or (1.0, 0.0, -np.inf, np.inf)
                    for name in traced.hooked]  # weights only: never clipped or quantized
            table = np.asarray(rows, dtype=np.float32).reshape(-1, 4).T
            self._range_tensors = tuple(tf.constant(column) for column in table)
        return self._range_tensors

    def _traced(self) -> Traced | None:
        """The traced forward for this model and scheme, shared by every simulation of them
        (the int8 targets of both formats quantize the same way)."""
        per_model = TRACES.setdefault(self.model, {})
        hooked = tuple(dict.fromkeys([*self.ranges.calib_stats,
                                      *(f.name for f in self.facts if f.weighted)]))
        # What the trace depends on: the weight rounding its shadows hold, the activation
        # kind, the output it returns.
        key = (replace(self.scheme, quantized_input=False, same_scale=frozenset()), hooked,
               self.output_index or 0)
        if key not in per_model:
            try:
                shadows = {f.name: shadow_layer(f, self.scheme) for f in self.facts
                           if f.weighted and self.scheme.weights is not None}
                index = {name: i for i, name in enumerate(hooked)}
                per_model[key] = Traced(index, traced_forward(
                    self.model, index, self.scheme.activations, shadows, self.output_index))
            except Exception:  # any tracing failure falls back to the eager path
                per_model[key] = None
        return per_model[key]

    def eager(self, config: Config) -> np.ndarray:
        kind = self.scheme.activations

        def hook(name: str, output: Any) -> Any:
            quantization = self.ranges.quantization(name)
            if quantization is None or isinstance(output, list | tuple):
                return output
            scale, zero, low, high = quantization
            values = np.asarray(output)
            if name in config.clip_only:
                values = np.clip(values, low, high)
            if name in config.activations:
                values = fake_quantize_affine(values, scale, zero, kind)
            return values

        inputs = self._fed(config)
        with self._quantized_weights(config.weights):
            return np.concatenate([
                forward(self.model, batch_rows(inputs, slice(i, i + self.batch_size)), hook,
                        self.output_index or 0)
                for i in range(0, batch_length(inputs), self.batch_size)])

    @contextlib.contextmanager
    def _quantized_weights(self, names: Collection[str]) -> Iterator[None]:
        saved: list[tuple[Any, np.ndarray]] = []
        try:
            for name in names:
                for kernel in self.ranges.layers[name].kernels:
                    original = np.asarray(kernel.variable)
                    saved.append((kernel.variable, original))
                    kernel.variable.assign(quantize_kernel(original, kernel.channel_axes,
                                                           self.scheme))
                if self.scheme.weights is WeightKind.FP16:  # int8 keeps int32 biases: exact enough
                    for bias in self.ranges.layers[name].biases:
                        original = np.asarray(bias)
                        saved.append((bias, original))
                        bias.assign(to_float16(original, self.scheme.fp16_clamp))
            yield
        finally:
            for variable, original in saved:
                variable.assign(original)
