"""Metrics for outputs that are not 3-channel images: SQNR, max error, top-1 agreement.

Each walks the outputs ``chunk`` samples at a time, so memory stays bounded for long runs.
"""

from __future__ import annotations

import numpy as np

from qcheck.compare.accumulate import CHUNK

__all__ = ["finite", "max_abs_error", "nonfinite_fraction", "sqnr_db", "top1_agreement"]


def finite(values: np.ndarray) -> np.ndarray:
    """``values`` in float64 with NaN as 0 and infinities as the largest float32: tensor
    metrics stay numbers (and very bad ones) where a target produced NaN or infinity."""
    largest = float(np.finfo(np.float32).max)
    return np.nan_to_num(np.asarray(values, np.float64), nan=0.0, posinf=largest,
                         neginf=-largest)


def nonfinite_fraction(values: np.ndarray, chunk: int = CHUNK) -> float:
    """Share of ``values`` that are NaN or ±infinity."""
    if values.size == 0:
        return 0.0
    bad = sum(int(np.count_nonzero(~np.isfinite(np.asarray(values[start:start + chunk]))))
              for start in range(0, len(values), chunk))
    return bad / values.size


def sqnr_db(reference: np.ndarray, candidate: np.ndarray, chunk: int = CHUNK) -> float:
    """Signal-to-quantization-noise ratio: 10·log10(Σref² / Σ(cand−ref)²)."""
    noise = signal = 0.0
    for start in range(0, len(reference), chunk):
        ref = np.asarray(reference[start:start + chunk], np.float64)
        cand = finite(candidate[start:start + chunk])
        noise += float(np.sum((cand - ref) ** 2))
        signal += float(np.sum(ref**2))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * float(np.log10(signal / noise))


def max_abs_error(reference: np.ndarray, candidate: np.ndarray, chunk: int = CHUNK) -> float:
    worst = 0.0
    for start in range(0, len(reference), chunk):
        ref = np.asarray(reference[start:start + chunk], np.float64)
        cand = finite(candidate[start:start + chunk])
        worst = max(worst, float(np.max(np.abs(cand - ref), initial=0.0)))
    return worst


def top1_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Share of samples whose arg-max class is the same in both outputs."""
    ref = np.asarray(reference).reshape(reference.shape[0], -1)
    cand = finite(candidate).reshape(candidate.shape[0], -1)
    return float(np.mean(np.argmax(ref, axis=1) == np.argmax(cand, axis=1)))
