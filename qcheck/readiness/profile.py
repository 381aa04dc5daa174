"""What a worker measures of an artifact on this machine: latency per image (1 and 2 threads,
warm-up excluded, as many runs as a time budget allows) and the memory the runtime adds; and,
untimed, the outputs of the reference kernels on a few evaluation images."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from qcheck.memory import resident_bytes
from qcheck.named import batch_rows, concat_batches, sample_rows
from qcheck.runners import runner_for
from qcheck.types import Format

__all__ = ["REFERENCE_IMAGES", "THREADS", "profile_artifact", "run_reference_kernels"]

THREADS = (1, 2)
WARM_UP = 2
MIN_RUNS, MAX_RUNS = 5, 200
# Timing stops early once this many runs agree this closely (p90 within 3 % of the median):
# more runs of a steady kernel would only restate the median.
STEADY_RUNS, STEADY_SPREAD = 12, 0.03
REFERENCE_IMAGES = 8  # evaluation images run on the reference kernels too
_BUDGET = 0.12  # seconds of timed runs per thread count (QCHECK_PROFILE_SECONDS)


def profile_artifact(fmt: Format, content: bytes, batches: Any) -> dict[str, Any]:
    """Latency and memory: timed, so the caller runs it with the processor to itself."""
    budget = float(os.environ.get("QCHECK_PROFILE_SECONDS") or _BUDGET)
    sample = batch_rows(next(iter(batches)), slice(0, 1))
    latency: dict[str, Any] = {}
    memory = None
    for threads in THREADS:
        before = _resident_mb()
        with runner_for(fmt, content, threads, timed=True) as runner:
            for _ in range(WARM_UP):
                runner.infer(sample)
            if memory is None:
                memory = max(_resident_mb() - before, 0.0)
            latency[str(threads)] = _timed(lambda: runner.infer(sample), budget)
    return {"latency_ms": latency, "memory_mb": round(memory or 0.0, 2)}


def run_reference_kernels(fmt: Format, content: bytes, batches: Any, outputs: Path) -> None:
    """The first evaluation images' outputs on the reference kernels (written to
    ``outputs``): untimed, so this may share the processor with anything."""
    images = batch_rows(concat_batches(list(batches)), slice(0, REFERENCE_IMAGES))
    with runner_for(fmt, content, reference=True) as runner:
        np.save(outputs, runner.infer_all(list(sample_rows(images))))


def _timed(run: Any, budget: float) -> dict[str, Any]:
    seconds: list[float] = []
    deadline = time.perf_counter() + budget
    while len(seconds) < MIN_RUNS or (time.perf_counter() < deadline and
                                      len(seconds) < MAX_RUNS and not _steady(seconds)):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    milliseconds = np.asarray(seconds) * 1000.0
    return {"median": round(float(np.median(milliseconds)), 4),
            "p90": round(float(np.percentile(milliseconds, 90)), 4), "runs": len(seconds)}


def _steady(seconds: list[float]) -> bool:
    if len(seconds) < STEADY_RUNS:
        return False
    median = float(np.median(seconds))
    return float(np.percentile(seconds, 90)) <= median * (1 + STEADY_SPREAD)


def _resident_mb() -> float:
    return (resident_bytes() or 0) / 1024**2
