"""Per-layer output ranges over some images, recorded by running the Keras model (the ranges
themselves and their file format are ``qcheck.stats``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from qcheck.analyze.forward import forward
from qcheck.named import Batch
from qcheck.stats import ActivationStats, load_stats, save_stats

__all__ = ["ActivationStats", "activation_stats", "load_stats", "record_stats", "save_stats"]


def activation_stats(model: Any, batches: Iterable[Batch]
                     ) -> tuple[ActivationStats, dict[str, ActivationStats]]:
    """Ranges of the model input and of every layer's output over ``batches``."""
    _, input_stats, stats = record_stats(model, batches)
    return input_stats, stats


def record_stats(model: Any, batches: Iterable[Batch]
                 ) -> tuple[np.ndarray, ActivationStats, dict[str, ActivationStats]]:
    """The model's outputs and, in the same pass, every layer's range."""
    stats: dict[str, ActivationStats] = {}
    input_stats = ActivationStats()
    outputs = []

    def record(path: str, output: Any) -> Any:
        if not isinstance(output, list | tuple):
            stats.setdefault(path, ActivationStats()).update(np.asarray(output))
        return output

    # A model with several inputs: the image input's range, and each other input's by name.
    image_input = getattr(getattr(batches, "images", None), "image_input", "image")
    for batch in batches:
        if isinstance(batch, Mapping):
            for name, values in batch.items():
                if name != image_input:
                    stats.setdefault(name, ActivationStats()).update(np.asarray(values))
            input_stats.update(np.asarray(batch[image_input]))
        else:
            input_stats.update(batch)
        outputs.append(forward(model, batch, record))
    return np.concatenate(outputs), input_stats, stats

