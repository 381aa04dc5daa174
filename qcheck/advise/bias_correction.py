"""Empirical bias correction (Nagel et al. 2019, section 4.2) on the Keras weights.

Rounding a layer's weights shifts the mean of its outputs: E[W̃x] − E[Wx] = (W̃ − W)·E[x] per
output channel. Measuring that shift on the calibration images (through a copy of the layer
holding only the rounding error, with no bias or activation) and subtracting it from the bias
gives the quantized model the float model's channel means back; a per-channel colour cast is
exactly such a shift. The correction depends on how the target rounds (per channel or per
tensor), so it is computed for one scheme at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from qcheck.analyze.forward import forward
from qcheck.analyze.layers import layer_facts
from qcheck.analyze.schemes import Scheme, quantize_kernel
from qcheck.named import Batch, model_input_names

__all__ = ["CorrectedLayer", "correct_biases"]


@dataclass(frozen=True)
class CorrectedLayer:
    name: str
    largest_shift: float  # the largest per-channel mean shift removed, in output units


def correct_biases(model: Any, scheme: Scheme, batches: Iterable[Batch]
                   ) -> tuple[Any, list[CorrectedLayer]]:
    """A copy of ``model`` whose biases cancel ``scheme``'s weight-rounding shift."""
    import keras

    corrected = keras.models.clone_model(model)
    corrected.set_weights(model.get_weights())
    facts = [f for f in layer_facts(corrected) if f.weighted and len(f.biases) == 1
             and len(f.kernels) == 1 and len(f.inbound) == 1]
    wanted = {f.inbound[0] for f in facts}
    input_names = model_input_names(corrected)
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}

    def record(path: str, output: Any) -> Any:
        if path in wanted and not isinstance(output, list | tuple):
            _accumulate(sums, counts, path, np.asarray(output))
        return output

    for batch in batches:
        fed = dict(batch) if isinstance(batch, Mapping) else {input_names[0]: batch}
        for name in input_names:
            if name in wanted and name in fed:
                _accumulate(sums, counts, name, np.asarray(fed[name]))
        forward(corrected, batch, record)
    changed: list[CorrectedLayer] = []
    for f in facts:
        if f.inbound[0] not in sums:
            continue
        # (W̃ − W)·E[x]: the rounding-error layer applied to the mean input.
        mean_input = sums[f.inbound[0]] / max(counts[f.inbound[0]], 1)
        shift = _mean_shift(_rounding_error_layer(f, scheme), mean_input)
        bias = f.biases[0]
        bias.assign(np.asarray(bias) - shift)
        changed.append(CorrectedLayer(f.name, float(np.abs(shift).max())))
    return corrected, changed


def _accumulate(sums: dict[str, np.ndarray], counts: dict[str, int], name: str,
                values: np.ndarray) -> None:
    """Per-position sums over the batch: E[x] keeps its spatial layout (padding matters)."""
    total = values.sum(axis=0)
    sums[name] = total if name not in sums else sums[name] + total
    counts[name] = counts.get(name, 0) + len(values)


def _rounding_error_layer(facts: Any, scheme: Scheme) -> Any:
    layer = facts.layer
    config = {**layer.get_config(), "activation": "linear", "use_bias": False,
              "name": f"{layer.name}__rounding_error"}
    error = type(layer).from_config(config)
    error.build(tuple(layer.input.shape))
    kernel = facts.kernels[0]
    original = np.asarray(kernel.variable)
    error.set_weights([quantize_kernel(original, kernel.channel_axes, scheme) - original])
    return error


def _mean_shift(error_layer: Any, mean_input: np.ndarray) -> np.ndarray:
    out = np.asarray(error_layer(mean_input[np.newaxis].astype(np.float32)))
    return out.reshape(-1, out.shape[-1]).mean(axis=0)
