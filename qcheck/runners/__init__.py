"""Run stage: one runner per backend behind ``BaseRunner``."""

from __future__ import annotations

from qcheck.runners.base import BaseRunner
from qcheck.runners.keras_runner import KerasRunner
from qcheck.runners.litert import LiteRTRunner
from qcheck.runners.onnxrt import OnnxRuntimeRunner
from qcheck.types import Format

__all__ = ["BaseRunner", "KerasRunner", "LiteRTRunner", "OnnxRuntimeRunner", "runner_for"]


def runner_for(fmt: Format, content: bytes, num_threads: int | None = None, *,
               reference: bool = False, timed: bool = False) -> LiteRTRunner | OnnxRuntimeRunner:
    """The runtime for an artifact: its default (optimised) kernels, or with ``reference``
    LiteRT's built-in kernels without delegates / ONNX Runtime without graph optimisation.
    ``timed``: a latency measurement, with the runtime's threading as an app gets it."""
    if fmt is Format.TFLITE:
        return LiteRTRunner(content, num_threads, reference=reference)
    return OnnxRuntimeRunner(content, num_threads, reference=reference, spinning=timed)
