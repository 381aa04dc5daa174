"""Metrics for outputs that are not 3-channel images: SQNR, max error, top-1 agreement."""

from __future__ import annotations

import numpy as np

__all__ = ["max_abs_error", "sqnr_db", "top1_agreement"]


def sqnr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio: 10·log10(Σref² / Σ(cand−ref)²)."""
    noise = float(np.sum((candidate.astype(np.float64) - reference) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * float(np.log10(signal / noise))


def max_abs_error(reference: np.ndarray, candidate: np.ndarray) -> float:
    return float(np.max(np.abs(candidate.astype(np.float64) - reference)))


def top1_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Share of samples whose arg-max class is the same in both outputs."""
    ref = reference.reshape(reference.shape[0], -1)
    cand = candidate.reshape(candidate.shape[0], -1)
    return float(np.mean(np.argmax(ref, axis=1) == np.argmax(cand, axis=1)))
