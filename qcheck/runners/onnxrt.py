"""ONNX artifacts on ONNX Runtime's CPU provider."""

from __future__ import annotations

from typing import Any

import numpy as np

from qcheck.errors import RuntimeFailure, first_line
from qcheck.runners.base import ArtifactRunner

__all__ = ["OnnxRuntimeRunner"]


class OnnxRuntimeRunner(ArtifactRunner):
    """ONNX Runtime's CPU provider with every graph optimisation (its default), or with
    ``reference=True`` none (the nodes run as exported)."""

    name = "onnxruntime"
    _session: Any = None
    refused: str | None = None  # ONNX Runtime has no fallback to report

    def __init__(self, model_content: bytes, num_threads: int | None = None, *,
                 reference: bool = False):
        super().__init__(model_content, num_threads)
        self.reference = reference

    def activate_impl(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self.reference:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        if self.num_threads:
            options.intra_op_num_threads = self.num_threads
        try:
            self._session = ort.InferenceSession(self.model_content, options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise RuntimeFailure(f"ONNX Runtime refused the model: {first_line(exc)}") from None

    def deactivate_impl(self) -> None:
        self._session = None

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        session = self._session
        name = session.get_inputs()[0].name
        try:
            (result, *_rest) = session.run(None, {name: batch})
        except Exception as exc:
            raise RuntimeFailure(f"ONNX Runtime failed: {first_line(exc)}") from None
        return np.asarray(result, dtype=np.float32)
