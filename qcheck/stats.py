"""Per-layer output ranges (what min/max calibration records) and their file: plain numbers,
so the reference store reads what a worker recorded without loading the analysis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ActivationStats", "load_stats", "save_stats"]


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
