"""Quantize chosen layers of the float model the way a target does, and measure the ΔE.

Attribution never converts per layer: weights are rounded in place (and restored) with the
target's scheme, and activations are fake-quantized on the fly with the ranges the target's
calibration recorded, inside one traced forward function whose per-sample masks pick the
layers, so many configurations share one batched pass.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from qcheck.analyze.graph import ActivationStats, LayerFacts, forward, traced_forward
from qcheck.analyze.schemes import (
    CODE_RANGES,
    Scheme,
    affine_parameters,
    fake_quantize,
    fake_quantize_affine,
    quantize_kernel,
    to_float16,
)
from qcheck.compare.color import to_unit_rgb
from qcheck.types import InputRange

__all__ = ["MEASURED_PIXELS", "Config", "Measured", "Simulation", "shadow_layer"]

# Screening of deep models (``Simulation.measure_layers``): more layers than SCREEN_ABOVE are
# first measured GROUP_SIZE at a time; groups under SCREEN_SHARE of the strongest group's ΔE
# (or under MIN_GROUP_DELTA_E) are not measured layer by layer.
SCREEN_ABOVE = 16
GROUP_SIZE = 8
SCREEN_SHARE = 0.25
MIN_GROUP_DELTA_E = 0.01

# ΔE of an attribution pass is measured on at most this many output pixels (a regular grid):
# the forward pass still sees whole images, only the colour comparison is thinned.
MEASURED_PIXELS = 50_000


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
_TRACES: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Traced | None]] = \
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
        elif id(variable) in biases and scheme.weights == "fp16":
            value = to_float16(value, scheme.fp16_clamp)
        values.append(value)
    shadow.set_weights(values)
    return shadow


@dataclass(frozen=True)
class Measured:
    delta_e: float
    chroma_share: float


@dataclass
class Simulation:
    model: Any
    facts: list[LayerFacts]
    scheme: Scheme
    inputs: np.ndarray  # model-range evaluation batch
    reference: np.ndarray  # float outputs on ``inputs``
    output_range: InputRange
    input_stats: ActivationStats
    calib_stats: dict[str, ActivationStats]
    # The artifact's own (scale, zero point) per layer output, when it could be read; with
    # ``stored_complete`` (TFLite, whose tensor names keep every layer's scope) a layer missing
    # there is one the converter fused away, so its output stays float.
    stored_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    stored_complete: bool = False
    batch_size: int = 16  # samples per forward pass (configurations × images)
    _recorded: dict[str, np.ndarray] | None = None
    _reference_lab: np.ndarray | None = None
    _range_tensors: tuple[Any, ...] | None = None
    configurations: int = 0  # simulated so far: what the analysis cost, in forward passes

    @property
    def layers(self) -> dict[str, LayerFacts]:
        return {f.name: f for f in self.facts}

    def outputs(self, *, weights: Collection[str] = (), activations: Collection[str] = (),
                clip_only: Collection[str] = (), quantize_input: bool = False) -> np.ndarray:
        """Forward pass with only the named layers quantized (weights, outputs or both)."""
        return self.outputs_each([Config(tuple(weights), tuple(activations), tuple(clip_only),
                                          quantize_input)])[0]

    def measure_each(self, configs: Sequence[Config]) -> list[Measured]:
        return [self.measure(outputs) for outputs in self.outputs_each(configs)]

    def measure_layers(self, names: Sequence[str],
                       config_for: Callable[[tuple[str, ...]], Config]) -> dict[str, Measured]:
        """ΔE per layer, each quantized alone as ``config_for`` says, for the layers that can
        matter.

        Deep models are screened first: consecutive layers are measured in groups of
        ``GROUP_SIZE``, and only the groups reaching ``SCREEN_SHARE`` of the strongest group
        (and ``MIN_GROUP_DELTA_E``) are measured layer by layer, which keeps attribution to a
        fraction of the forward passes. Layers of the other groups are left out of the result.
        """
        names = list(names)
        if len(names) <= SCREEN_ABOVE:
            return dict(zip(names, self.measure_each([config_for((n,)) for n in names]),
                            strict=True))
        groups = [tuple(names[i : i + GROUP_SIZE]) for i in range(0, len(names), GROUP_SIZE)]
        together = self.measure_each([config_for(group) for group in groups])
        strongest = max(m.delta_e for m in together)
        threshold = max(MIN_GROUP_DELTA_E, SCREEN_SHARE * strongest)
        kept = [n for group, m in zip(groups, together, strict=True) if m.delta_e >= threshold
                for n in group]
        return dict(zip(kept, self.measure_each([config_for((n,)) for n in kept]), strict=True))

    def outputs_each(self, configs: Sequence[Config]) -> list[np.ndarray]:
        """The outputs of each configuration, with the forward passes batched.

        One traced TensorFlow function runs the whole model; per-sample masks choose which
        layers run with rounded weights (a shadow copy of the layer holding them) and which
        outputs are clipped or fake-quantized, so up to ``batch_size`` samples of any mix of
        configurations share one pass.
        """
        self.configurations += len(configs)
        count = len(self.inputs)
        per_call = max(1, self.batch_size // max(count, 1))
        traced = self._traced()
        results: list[np.ndarray] = []
        for start in range(0, len(configs), per_call):
            chunk = configs[start : start + per_call]
            if traced is None:  # a model the traced path cannot run: one at a time, eagerly
                results.extend(self._eager(config) for config in chunk)
                continue
            outputs = self._run(traced, chunk)
            results.extend(outputs[i * count : (i + 1) * count] for i in range(len(chunk)))
        return results

    def _run(self, traced: Traced, configs: Sequence[Config]) -> np.ndarray:
        import tensorflow as tf

        inputs, masks = [], []
        for config in configs:
            if config.quantize_input:
                inputs.append(fake_quantize(self.inputs, self.input_stats.low,
                                            self.input_stats.high, "uint8"))
            else:
                inputs.append(self.inputs)
            flags = np.zeros((3, len(traced.hooked)), dtype=np.float32)
            for row, names in enumerate((config.weights, config.activations,
                                         config.clip_only)):
                for name in names:
                    if name in traced.hooked:
                        flags[row, traced.hooked[name]] = 1.0
            masks.append(np.repeat(flags[np.newaxis], len(self.inputs), axis=0))
        stacked = np.concatenate(masks)
        outputs = traced.function(
            tf.constant(np.concatenate(inputs)), tf.constant(stacked[:, 0]),
            tf.constant(stacked[:, 1]), tf.constant(stacked[:, 2]), *self._ranges(traced))
        return np.asarray(outputs)

    def _ranges(self, traced: Traced) -> tuple[Any, ...]:
        """Per hooked layer: scale, zero point and clip bounds, as the target calibrated."""
        import tensorflow as tf

        if self._range_tensors is None:
            rows = [self.quantization(name) or (1.0, 0.0, -np.inf, np.inf)
                    for name in traced.hooked]  # weights only: never clipped or quantized
            table = np.asarray(rows, dtype=np.float32).reshape(-1, 4).T
            self._range_tensors = tuple(tf.constant(column) for column in table)
        return self._range_tensors

    def _traced(self) -> Traced | None:
        """The traced forward for this model and scheme, shared by every simulation of them
        (the int8 targets of both formats quantize the same way)."""
        per_model = _TRACES.setdefault(self.model, {})
        hooked = tuple(dict.fromkeys([*self.calib_stats,
                                      *(f.name for f in self.facts if f.weighted)]))
        # What the trace depends on: the weight rounding its shadows hold, the activation kind.
        key = (replace(self.scheme, quantized_input=False, same_scale=frozenset()), hooked)
        if key not in per_model:
            try:
                shadows = {f.name: shadow_layer(f, self.scheme) for f in self.facts
                           if f.weighted and self.scheme.weights is not None}
                index = {name: i for i, name in enumerate(hooked)}
                per_model[key] = Traced(index, traced_forward(
                    self.model, index, self.scheme.activations, shadows))
            except Exception:  # any tracing failure falls back to the eager path
                per_model[key] = None
        return per_model[key]

    def _eager(self, config: Config) -> np.ndarray:
        kind = self.scheme.activations

        def hook(layer: Any, output: Any) -> Any:
            name = layer.name
            quantization = self.quantization(name)
            if quantization is None or isinstance(output, list | tuple):
                return output
            scale, zero, low, high = quantization
            values = np.asarray(output)
            if name in config.clip_only:
                values = np.clip(values, low, high)
            if name in config.activations:
                values = fake_quantize_affine(values, scale, zero, kind)
            return values

        inputs = self.inputs
        if config.quantize_input:
            inputs = fake_quantize(inputs, self.input_stats.low, self.input_stats.high, "uint8")
        with self._quantized_weights(config.weights):
            return np.concatenate([forward(self.model, inputs[i : i + self.batch_size], hook)
                                   for i in range(0, len(inputs), self.batch_size)])

    @property
    def quantized_layers(self) -> list[str]:
        """Layers whose outputs the target stores quantized: those with a range in a TFLite
        artifact (fused layers have none), else every calibrated layer."""
        if self.stored_ranges and self.stored_complete:
            return [name for name in self.calib_stats if name in self.stored_ranges]
        return list(self.calib_stats)

    def quantization(self, name: str) -> tuple[float, float, float, float] | None:
        """How the target stores ``name``'s output: scale, zero point and the real range the
        codes cover. The artifact's own choice when it was read (``stored_ranges``), else what
        calibration measured."""
        kind = self.scheme.activations
        stored = self.stored_ranges.get(name)
        if stored is not None and name in self.calib_stats and kind in CODE_RANGES and (
                kind == "uint8" or stored[1] == 0):
            scale, zero = stored
            lowest, highest = CODE_RANGES[kind]
            return scale, zero, (lowest - zero) * scale, (highest - zero) * scale
        stats = self.quantized_range(name)
        if stats is None:
            return None
        scale, zero = affine_parameters(stats.low, stats.high, kind)
        return scale, zero, stats.low, stats.high

    def quantized_range(self, name: str) -> ActivationStats | None:
        """The calibrated range the target stores ``name``'s output with: its own, or, for a
        kernel that must keep its input's scale, the range of the layer feeding it."""
        layers = self.layers
        while name in layers and layers[name].kind in self.scheme.same_scale \
                and len(layers[name].inbound) == 1 and layers[name].inbound[0] in self.calib_stats:
            name = layers[name].inbound[0]
        return self.calib_stats.get(name)

    @property
    def eval_stats(self) -> dict[str, ActivationStats]:
        """Per-layer ranges on the evaluation images being analyzed."""
        stats = {}
        for name, values in self.float_outputs().items():
            stats[name] = ActivationStats()
            stats[name].update(values)
        return stats

    def float_outputs(self) -> dict[str, np.ndarray]:
        """Every layer's float output on ``inputs``, recorded once (evaluation ranges and
        clipping are measured on them)."""
        if self._recorded is None:
            recorded: dict[str, list[np.ndarray]] = {}

            def record(layer: Any, output: Any) -> Any:
                if not isinstance(output, list | tuple):
                    recorded.setdefault(layer.name, []).append(np.asarray(output))
                return output

            for i in range(0, len(self.inputs), self.batch_size):
                forward(self.model, self.inputs[i : i + self.batch_size], record)
            self._recorded = {name: np.concatenate(parts) for name, parts in recorded.items()}
        return self._recorded

    def measure(self, outputs: np.ndarray, against: np.ndarray | None = None) -> Measured:
        """Mean CIEDE2000 and chroma share against the float outputs (or ``against``)."""
        from skimage import color

        with np.errstate(invalid="ignore", over="ignore"):
            candidate = np.nan_to_num(outputs, nan=0.0, posinf=1e6, neginf=-1e6)
        if against is None:
            if self._reference_lab is None:
                self._reference_lab = self._lab(self.reference)
            lab_reference = self._reference_lab
        else:
            lab_reference = self._lab(against)
        lab = self._lab(candidate)
        delta_e = color.deltaE_ciede2000(lab_reference, lab, channel_axis=-1)
        diff = lab - lab_reference
        lightness, chroma = float(np.sum(diff[..., 0] ** 2)), float(np.sum(diff[..., 1:] ** 2))
        total = lightness + chroma
        return Measured(float(np.mean(delta_e)), chroma / total if total > 0 else 0.0)

    def _lab(self, outputs: np.ndarray) -> np.ndarray:
        """CIELAB of the outputs, on a pixel grid thinned to ``MEASURED_PIXELS`` at most."""
        from skimage import color

        if outputs.ndim == 4:
            pixels = outputs.shape[0] * outputs.shape[1] * outputs.shape[2]
            stride = max(1, int(np.ceil(np.sqrt(pixels / MEASURED_PIXELS))))
            outputs = outputs[:, ::stride, ::stride]
        unit = to_unit_rgb(outputs, self.output_range).astype(np.float64)
        return np.asarray(color.rgb2lab(unit, channel_axis=-1))

    def full(self) -> np.ndarray:
        """Every layer quantized as the target does: the simulation of the whole artifact."""
        quantized = [f.name for f in self.facts if f.weighted] if self.scheme.weights else []
        activations = self.quantized_layers if self.scheme.activations else []
        return self.outputs(weights=quantized, activations=activations,
                            quantize_input=self.scheme.quantized_input)

    @contextlib.contextmanager
    def _quantized_weights(self, names: Collection[str]) -> Iterator[None]:
        saved: list[tuple[Any, np.ndarray]] = []
        try:
            for name in names:
                for kernel in self.layers[name].kernels:
                    original = np.asarray(kernel.variable)
                    saved.append((kernel.variable, original))
                    kernel.variable.assign(quantize_kernel(original, kernel.channel_axes,
                                                           self.scheme))
                if self.scheme.weights == "fp16":  # int8 targets keep int32 biases: exact enough
                    for bias in self.layers[name].biases:
                        original = np.asarray(bias)
                        saved.append((bias, original))
                        bias.assign(to_float16(original, self.scheme.fp16_clamp))
            yield
        finally:
            for variable, original in saved:
                variable.assign(original)
