"""Quantize chosen layers of the float model the way a target does, and measure the ΔE.

Attribution never converts per layer: weights are rounded with the target's scheme, and
activations are fake-quantized with the ranges the target stores, inside one traced forward
function whose per-sample masks pick the layers (``batched.ConfigRunner``), so many
configurations share one batched pass.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from qcheck.analyze.batched import TRACES, Config, ConfigRunner, shadow_layer
from qcheck.analyze.forward import forward
from qcheck.analyze.layers import LayerFacts
from qcheck.analyze.ranges import Quantization, TargetRanges
from qcheck.analyze.schemes import Scheme
from qcheck.analyze.stats import ActivationStats
from qcheck.compare.drift import MEASURED_PIXELS, DriftMeasure, drift_measure
from qcheck.named import Batch, batch_length, batch_rows
from qcheck.outputs import OutputKind, OutputSpec
from qcheck.types import InputRange

__all__ = ["MEASURED_PIXELS", "TRACES", "Config", "Measured", "Simulation", "shadow_layer"]

_TRACES = TRACES  # the name the tests of the traced path look it up by

# Screening of deep models (``Simulation.measure_layers``): more layers than SCREEN_ABOVE are
# first measured GROUP_SIZE at a time; groups under SCREEN_SHARE of the strongest drift measured
# so far for the target, any cause (or under the drift measure's floor), are not measured layer
# by layer.
SCREEN_ABOVE = 16
GROUP_SIZE = 8
SCREEN_SHARE = 0.25



@dataclass
class LayerSummary:
    """One layer's float outputs, reduced: their ranges, and how many values (of ``size``)
    lie outside the range the target stores them in."""

    stats: ActivationStats
    outside: int = 0
    size: int = 0


@dataclass(frozen=True)
class Measured:
    drift: float  # in the output kind's measure (``qcheck.compare.drift``): ΔE for images
    chroma_share: float


@dataclass
class Simulation:
    model: Any
    facts: list[LayerFacts]
    scheme: Scheme
    inputs: Batch  # model-range evaluation batch (a dict by name for several inputs)
    reference: np.ndarray  # float outputs on ``inputs`` (of the output analysed)
    output_range: InputRange
    input_stats: ActivationStats
    calib_stats: dict[str, ActivationStats]
    stored_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    stored_complete: bool = False
    batch_size: int = 16  # samples per forward pass (configurations × images)
    output_layer: str | None = None  # the layer whose output is the model's
    output: OutputSpec | None = None  # what the output is (None: an RGB image in output_range)
    # Weight-only measures shared by targets' simulations on the same ``images`` (indices).
    shared: dict[Any, Measured] | None = None
    images: tuple[int, ...] = ()
    output_index: int | None = None  # of several outputs, the one analysed; of several
    image_input: str = "image"  # inputs, the one the images feed
    _summary: dict[str, LayerSummary] | None = None
    _strongest: float = 0.0  # the largest drift measure_layers has seen, group or layer
    _prepared: tuple[np.ndarray | None] | None = None

    @cached_property
    def ranges(self) -> TargetRanges:
        return TargetRanges(self.facts, self.scheme, self.calib_stats, self.stored_ranges,
                            self.stored_complete, self.output_layer)

    @cached_property
    def runner(self) -> ConfigRunner:
        return ConfigRunner(self.model, self.ranges, self.inputs, self.input_stats,
                            self.batch_size, 0, self.output_index, self.image_input)

    @property
    def layers(self) -> dict[str, LayerFacts]:
        return self.ranges.layers

    @property
    def quantized_layers(self) -> list[str]:
        return self.ranges.quantized_layers

    def quantization(self, name: str) -> Quantization | None:
        return self.ranges.quantization(name)

    @property
    def configurations(self) -> int:
        """Configurations simulated so far: what the analysis cost, in forward passes."""
        return self.runner.configurations

    def outputs(self, *, weights: Collection[str] = (), activations: Collection[str] = (),
                clip_only: Collection[str] = (), quantize_input: bool = False) -> np.ndarray:
        """Forward pass with only the named layers quantized (weights, outputs or both)."""
        return self.outputs_each([Config(tuple(weights), tuple(activations), tuple(clip_only),
                                          quantize_input)])[0]

    def outputs_each(self, configs: Sequence[Config]) -> list[np.ndarray]:
        return self.runner.outputs_each(configs)

    def _eager(self, config: Config) -> np.ndarray:
        return self.runner.eager(config)

    def measure_each(self, configs: Sequence[Config]) -> list[Measured]:
        """The drift of each configuration; one that only rounds weights is run once per
        check, whichever target's simulation asks first (int8 TFLite and ONNX round weights
        alike)."""
        keys = [_weights_only_key(self, config) for config in configs]
        return _reusing(self.shared, keys, configs, lambda missing: [
            self.measure(outputs) for outputs in self.outputs_each(missing)])

    def measure_layers(self, names: Sequence[str],
                       config_for: Callable[[tuple[str, ...]], Config]) -> dict[str, Measured]:
        """ΔE per layer, each quantized alone as ``config_for`` says, for the layers that can
        matter.

        Deep models are screened first: consecutive layers are measured in groups of
        ``GROUP_SIZE``, and only the groups reaching ``SCREEN_SHARE`` of the strongest group
        measured so far, for this cause or an earlier one (and the drift measure's floor), are
        measured layer by layer, which keeps attribution to a fraction of the forward passes.
        Layers of the other groups are left out of the result.
        """
        names = list(names)
        if len(names) <= SCREEN_ABOVE:
            each = dict(zip(names, self.measure_each([config_for((n,)) for n in names]),
                            strict=True))
            self._strongest = max([self._strongest, *(m.drift for m in each.values())])
            return each
        groups = [tuple(names[i : i + GROUP_SIZE]) for i in range(0, len(names), GROUP_SIZE)]
        together = self.measure_each([config_for(group) for group in groups])
        self._strongest = max([self._strongest, *(m.drift for m in together)])
        threshold = max(self.drift.floor, SCREEN_SHARE * self._strongest)
        kept = [n for group, m in zip(groups, together, strict=True) if m.drift >= threshold
                for n in group]
        return dict(zip(kept, self.measure_each([config_for((n,)) for n in kept]), strict=True))

    @property
    def eval_stats(self) -> dict[str, ActivationStats]:
        """Per-layer ranges on the evaluation images being analyzed."""
        return {name: entry.stats for name, entry in self.float_summary().items()}

    def clipped_fractions(self) -> dict[str, float]:
        """Per quantized layer, the share of its float outputs outside its stored range."""
        return {name: entry.outside / entry.size
                for name, entry in self.float_summary().items() if entry.size}

    def float_summary(self) -> dict[str, LayerSummary]:
        """Every layer's float output on ``inputs``, reduced as it is recorded (its ranges, and
        how much of it the target's range clips): a deep model's outputs on every image
        would not fit in memory (a MIRNet-size model's: gigabytes)."""
        if self._summary is None:
            quantized = set(self.quantized_layers)
            summary: dict[str, LayerSummary] = {}

            def record(path: str, output: Any) -> Any:
                if not isinstance(output, list | tuple):
                    values = np.asarray(output)
                    entry = summary.setdefault(path, LayerSummary(ActivationStats()))
                    entry.stats.update(values)
                    quantization = self.quantization(path) if path in quantized else None
                    if quantization is not None and values.size:
                        _, _, low, high = quantization
                        entry.outside += int(np.count_nonzero((values < low) | (values > high)))
                        entry.size += values.size
                return output

            for i in range(0, batch_length(self.inputs), self.batch_size):
                forward(self.model, batch_rows(self.inputs, slice(i, i + self.batch_size)), record)
            self._summary = summary
        return self._summary

    @cached_property
    def drift(self) -> DriftMeasure:
        return drift_measure(self.output or OutputSpec(OutputKind.IMAGE, self.output_range, 4, 3,
                                                       "an RGB image"))

    def measure(self, outputs: np.ndarray, against: np.ndarray | None = None) -> Measured:
        """The drift of ``outputs`` from the float outputs (or ``against``)."""
        if against is None:
            if self._prepared is None:
                self._prepared = (self.drift.prepare(self.reference),)
            found = self.drift(self.reference, outputs, self._prepared[0])
        else:
            found = self.drift(against, outputs, self.drift.prepare(against))
        return Measured(found.mean, found.chroma_share)

    def full(self) -> np.ndarray:
        """Every layer quantized as the target does: the simulation of the whole artifact."""
        quantized = [f.name for f in self.facts if f.weighted] if self.scheme.weights else []
        activations = self.quantized_layers if self.scheme.activations else []
        return self.outputs(weights=quantized, activations=activations,
                            quantize_input=self.scheme.quantized_input)


def _weights_only_key(sim: Simulation, config: Config) -> tuple[Any, ...] | None:
    """What a weights-only configuration's drift depends on (``None``: more than that)."""
    if sim.shared is None or config.activations or config.clip_only or config.quantize_input:
        return None
    scheme = sim.scheme
    return (sim.images, sim.output_index, scheme.weights, scheme.per_channel, scheme.fp16_clamp,
            config.weights)


def _reusing(shared: dict[Any, Measured] | None, keys: Sequence[tuple[Any, ...] | None],
             configs: Sequence[Config], run: Callable[[Sequence[Config]], list[Measured]]
             ) -> list[Measured]:
    """``run`` on the configurations ``shared`` has no figure for; the others from it."""
    known = {} if shared is None else shared
    measured = iter(run([config for config, key in zip(configs, keys, strict=True)
                         if key is None or key not in known]))
    results = []
    for key in keys:
        found = known[key] if key is not None and key in known else next(measured)
        if key is not None:
            known[key] = found
        results.append(found)
    return results
