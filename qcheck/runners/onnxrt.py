"""ONNX artifacts on ONNX Runtime's CPU provider."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from converters.onnx import waiting_without_spinning
from qcheck.errors import RuntimeFailure, first_line
from qcheck.named import Batch
from qcheck.runners.base import ArtifactRunner

__all__ = ["OnnxRuntimeRunner"]


class OnnxRuntimeRunner(ArtifactRunner):
    """ONNX Runtime's CPU provider with every graph optimisation (its default), or with
    ``reference=True`` none (the nodes run as exported).

    Its threads wait without spinning unless ``spinning`` (ONNX Runtime's default, for
    latency): qcheck's lanes share the cores, and a spinning pool burnt a second of processor
    time per check that a conversion in the other lane was waiting for. The outputs are the
    same either way."""

    name = "onnxruntime"
    _session: Any = None
    refused: str | None = None  # ONNX Runtime has no fallback to report

    def __init__(self, model_content: bytes, num_threads: int | None = None, *,
                 reference: bool = False, spinning: bool = False):
        super().__init__(model_content, num_threads)
        self.reference, self.spinning = reference, spinning

    def activate_impl(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        if not self.spinning:
            options = waiting_without_spinning(options)
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

    def infer_impl(self, batch: Batch) -> np.ndarray | list[np.ndarray]:
        session = self._session
        names = [i.name for i in session.get_inputs()]
        if isinstance(batch, Mapping):
            missing = [name for name in names if name not in batch]
            if missing:
                raise RuntimeFailure(f"ONNX Runtime: the artifact's input {missing[0]!r} is not "
                                     f"among the inputs fed ({', '.join(batch)})")
            fed = {name: batch[name] for name in names}
        else:
            fed = {names[0]: batch}
        try:
            results = session.run(None, fed)
        except Exception as exc:
            raise RuntimeFailure(f"ONNX Runtime failed: {first_line(exc)}") from None
        outputs = [np.asarray(r, dtype=np.float32) for r in results]
        return outputs[0] if len(outputs) == 1 else outputs
