"""Quantize chosen layers of the float model the way a target does, and measure the ΔE.

Attribution never converts per layer: weights are rounded in place (and restored) with the
target's scheme, and activations are fake-quantized on the fly with the ranges the target's
calibration recorded, through hooks on the Keras graph. Each configuration is one forward pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from qcheck.analyze.graph import ActivationStats, LayerFacts, forward
from qcheck.analyze.schemes import Scheme, fake_quantize, quantize_kernel, to_float16
from qcheck.compare.color import to_unit_rgb
from qcheck.types import InputRange

__all__ = ["MEASURED_PIXELS", "Measured", "Simulation"]

# ΔE of an attribution pass is measured on at most this many output pixels (a regular grid):
# the forward pass still sees whole images, only the colour comparison is thinned.
MEASURED_PIXELS = 50_000


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
    batch_size: int = 16
    _recorded: dict[str, np.ndarray] | None = None
    _reference_lab: np.ndarray | None = None

    @property
    def layers(self) -> dict[str, LayerFacts]:
        return {f.name: f for f in self.facts}

    def outputs(self, *, weights: Collection[str] = (), activations: Collection[str] = (),
                clip_only: Collection[str] = (), quantize_input: bool = False,
                activation_kind: str | None = None) -> np.ndarray:
        """Forward pass with only the named layers quantized (weights, outputs or both)."""
        kind = activation_kind if activation_kind is not None else self.scheme.activations

        def hook(layer: Any, output: Any) -> Any:
            name = layer.name
            if name not in activations and name not in clip_only:
                return output
            stats = self.calib_stats.get(name)
            if stats is None or isinstance(output, list | tuple):
                return output
            values = np.asarray(output)
            if name in clip_only:
                values = np.clip(values, stats.low, stats.high)
            if name in activations:
                values = fake_quantize(values, stats.low, stats.high, kind)
            return values

        inputs = self.inputs
        if quantize_input:
            inputs = fake_quantize(inputs, self.input_stats.low, self.input_stats.high,
                                   "uint8")
        changed = set(weights) | set(activations) | set(clip_only)
        # Layers upstream of every change compute what the float model does: replay those.
        replay = None if quantize_input else self._unaffected(changed)
        if replay:
            self.float_outputs()  # recorded before any weight is touched
        with self._quantized_weights(weights):
            batches = [forward(self.model, inputs[i : i + self.batch_size], hook,
                               replay=self._float_slice(replay, i))
                       for i in range(0, len(inputs), self.batch_size)]
        return np.concatenate(batches, axis=0)

    @property
    def eval_stats(self) -> dict[str, ActivationStats]:
        """Per-layer ranges on the evaluation images being analyzed."""
        stats = {}
        for name, values in self.float_outputs().items():
            stats[name] = ActivationStats()
            stats[name].update(values)
        return stats

    def _unaffected(self, changed: set[str]) -> set[str]:
        affected = set(changed)
        for facts in self.facts:  # topological order: inbound layers come first
            if affected & set(facts.inbound):
                affected.add(facts.name)
        return {f.name for f in self.facts} - affected

    def _float_slice(self, names: set[str] | None, start: int) -> dict[str, np.ndarray] | None:
        if not names:
            return None
        outputs = self.float_outputs()
        stop = start + self.batch_size
        return {name: outputs[name][start:stop] for name in names if name in outputs}

    def float_outputs(self) -> dict[str, np.ndarray]:
        """Every layer's float output on ``inputs``, recorded once for replay."""
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
        activations = list(self.calib_stats) if self.scheme.activations else []
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
