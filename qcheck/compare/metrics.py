"""One call from raw outputs to the contract's ``Metrics`` and the artifacts seen, by what the
output is (``qcheck.outputs``): colour or lightness images, class maps, classifiers, tensors."""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from qcheck.compare.accumulate import CHUNK, ChunkSums, ColourAccumulator
from qcheck.compare.classes import class_map_metrics
from qcheck.compare.pixels import lab_of, to_unit_rgb
from qcheck.compare.tensor import tensor_errors, top1_agreement
from qcheck.outputs import OutputKind, OutputSpec
from qcheck.results import Metrics
from qcheck.types import ArtifactKind, InputRange

__all__ = ["OutputComparison", "compare_outputs", "out_of_range_fraction", "reference_lab"]

# Chunks of at most this many pixels are measured two at a time: each holds some 160 bytes of
# temporaries per pixel, so larger ones go one at a time to bound the memory.
PARALLEL_CHUNK_PIXELS = CHUNK * 256 * 256


@dataclass(frozen=True)
class OutputComparison:
    metrics: Metrics
    artifacts_seen: tuple[ArtifactKind, ...]
    delta_e: np.ndarray | None  # (N, H, W) float32 per-pixel CIEDE2000, for image outputs


def compare_outputs(reference: np.ndarray, candidate: np.ndarray, output: OutputSpec, *,
                    clipped_fraction: float, lab_reference: np.ndarray | None = None,
                    chunk: int = CHUNK) -> OutputComparison:
    """Raw float outputs of the Keras model and of a target, in the model's own range.

    Image outputs are compared ``chunk`` images at a time, so memory stays bounded however
    many evaluation images there are; ``lab_reference`` (the reference in CIELAB) can be
    shared between targets.
    """
    if candidate.shape != reference.shape:
        raise ValueError(f"output shape {candidate.shape} differs from float {reference.shape}")
    errors = tensor_errors(reference, candidate, chunk)
    tensor = Metrics(
        sqnr_db=errors.sqnr_db,
        max_abs_error=errors.max_abs_error,
        top1_agreement=top1_agreement(reference, candidate) if output.is_classifier else None,
        clipped_fraction=clipped_fraction,
        nonfinite_fraction=errors.nonfinite_fraction,
    )
    tags = (ArtifactKind.NONFINITE,) if tensor.nonfinite_fraction else ()
    if output.is_class_map:
        return OutputComparison(replace(tensor, **class_map_metrics(reference, candidate, chunk)),
                                tags, None)
    if output.kind is not OutputKind.IMAGE:
        return OutputComparison(tensor, tags, None)
    colour = ColourAccumulator()

    def measured(start: int) -> ChunkSums:
        part = slice(start, start + chunk)
        return colour.measure(to_unit_rgb(np.asarray(reference[part]), output.range),
                              to_unit_rgb(np.asarray(candidate[part]), output.range),
                              None if lab_reference is None else lab_reference[part])[1]

    ahead = 2 if chunk * int(np.prod(reference.shape[1:3])) <= PARALLEL_CHUNK_PIXELS else 1
    for sums in _in_order(measured, range(0, len(reference), chunk), ahead):
        colour.fold(sums)
    found = colour.summary() if output.is_colour else colour.lightness_summary()
    return OutputComparison(replace(tensor, **found), colour.artifacts(clipped_fraction) + tags,
                            colour.delta_e)


def _in_order(measure: Callable[[int], ChunkSums], starts: Iterable[int], ahead: int
              ) -> Iterator[ChunkSums]:
    """``measure`` of each start, in order, up to ``ahead`` of them at once on the shared
    chunk threads: the last target still being compared gets both cores."""
    if ahead <= 1:
        yield from map(measure, starts)
        return
    pending: deque[Future[ChunkSums]] = deque()
    for start in starts:
        pending.append(_chunk_threads().submit(measure, start))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


@functools.cache
def _chunk_threads() -> ThreadPoolExecutor:
    """Two threads for every comparison in the process: with targets compared two at a time,
    the colour work still runs on no more threads than there are cores."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="qcheck-chunk")


def reference_lab(reference: np.ndarray, output_range: InputRange, chunk: int = CHUNK
                  ) -> np.ndarray:
    """The float outputs in CIELAB (float32), computed once and shared by every target."""
    lab = np.empty((*reference.shape[:3], 3), dtype=np.float32)
    for start in range(0, len(reference), chunk):
        lab[start : start + chunk] = lab_of(to_unit_rgb(np.asarray(
            reference[start : start + chunk]), output_range))
    return lab


def out_of_range_fraction(values: np.ndarray, low: float, high: float, chunk: int = CHUNK
                          ) -> float:
    """Share of ``values`` outside [low, high]: what a calibrated range would clip."""
    if values.size == 0:
        return 0.0
    outside = 0
    for start in range(0, len(values), chunk):
        part = np.asarray(values[start:start + chunk])
        outside += int(np.count_nonzero((part < low) | (part > high)))
    return outside / values.size
