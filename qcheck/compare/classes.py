"""Class outputs compared by arg-max: the share of pixels (or samples) whose class agrees with
the float model's, and the mean intersection-over-union against the float model's classes."""

from __future__ import annotations

from typing import Any

import numpy as np

from qcheck.compare.accumulate import CHUNK
from qcheck.compare.tensor import finite

__all__ = ["class_map_metrics"]


def class_map_metrics(reference: np.ndarray, candidate: np.ndarray, chunk: int = CHUNK
                      ) -> dict[str, Any]:
    """``class_agreement`` and ``miou`` of class maps (N, H, W, classes), streamed."""
    classes = int(reference.shape[-1])
    confusion = np.zeros((classes, classes), dtype=np.int64)  # float class × target class
    for start in range(0, len(reference), chunk):
        truth = np.argmax(np.asarray(reference[start:start + chunk]), axis=-1).ravel()
        found = np.argmax(finite(candidate[start:start + chunk]), axis=-1).ravel()
        confusion += np.bincount(truth * classes + found, minlength=classes * classes
                                 ).reshape(classes, classes)
    total = confusion.sum()
    agree = np.trace(confusion)
    hits = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - hits
    present = union > 0
    iou = hits[present] / union[present]
    return {"class_agreement": float(agree / total) if total else 1.0,
            "miou": float(iou.mean()) if iou.size else 1.0}
