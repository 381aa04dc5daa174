"""TFLite artifacts on the LiteRT interpreter, with quantized inputs and outputs handled."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from qcheck.errors import RuntimeFailure, first_line
from qcheck.named import Batch, batch_length
from qcheck.numerics import dequantize, quantize
from qcheck.quiet import native_quiet
from qcheck.runners.base import ArtifactRunner

__all__ = ["LiteRTRunner", "dequantize", "quantize"]


class LiteRTRunner(ArtifactRunner):
    """LiteRT with its default kernels (XNNPACK on a CPU), or with ``reference=True`` the
    built-in kernels without any delegate. When XNNPACK refuses to prepare the model, the
    runner falls back to the built-in kernels and says why in ``refused``."""

    name = "litert"
    _interpreter: Any = None
    _batch = 0
    _inputs: list[dict[str, Any]]
    _outputs: list[dict[str, Any]]

    def __init__(self, model_content: bytes, num_threads: int | None = None, *,
                 reference: bool = False):
        super().__init__(model_content, num_threads)
        self.reference = reference
        self.refused: str | None = None  # the default kernels' refusal, when it fell back

    def activate_impl(self) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if self.reference \
            else OpResolverType.AUTO
        try:
            with native_quiet():
                self._interpreter = Interpreter(model_content=self.model_content,
                                                num_threads=self.num_threads,
                                                experimental_op_resolver_type=resolver)
        except Exception as exc:
            raise RuntimeFailure(f"LiteRT refused the model: {first_line(exc)}") from None
        self._batch = 0
        # Names, indices, types and quantization, read once: a resize changes only shapes,
        # and every invoke (each timed latency run too) reads them.
        self._inputs = [dict(d) for d in self._interpreter.get_input_details()]
        self._outputs = [dict(d) for d in self._interpreter.get_output_details()]

    def deactivate_impl(self) -> None:
        self._interpreter = None

    @property
    def input_details(self) -> dict[str, Any]:
        return dict(self._interpreter.get_input_details()[0])

    @property
    def output_details(self) -> dict[str, Any]:
        return dict(self._interpreter.get_output_details()[0])

    def prepare(self, batch: Batch) -> None:
        """Size the interpreter for a batch; a delegate that refuses to prepare makes it fall
        back to the built-in kernels once."""
        if batch_length(batch) == self._batch:
            return
        try:
            self._allocate(batch)
        except RuntimeError as exc:
            if not self._falls_back(exc):
                raise
            self._allocate(batch)

    def _falls_back(self, exc: Exception) -> bool:
        """When the default kernels' delegate refused (at allocation, or at the first invoke
        for a model whose tensors are sized only when it runs), switch to the built-in kernels
        and keep the refusal to name it; ``False``: not a delegate's refusal."""
        if self.reference or "Delegate" not in str(exc):
            return False
        self.refused = " ".join(str(exc).split())
        self.reference = True
        self.activate_impl()
        return True

    def _allocate(self, batch: Batch) -> None:
        for detail, data in self._fed(batch):
            self._interpreter.resize_tensor_input(detail["index"], list(data.shape))
        with native_quiet():
            self._interpreter.allocate_tensors()
        self._batch = batch_length(batch)

    def _fed(self, batch: Batch) -> list[tuple[dict[str, Any], np.ndarray]]:
        """Each input's details with its data: one input takes the batch whatever its name,
        several are matched by name."""
        details = self._inputs
        if not isinstance(batch, Mapping):
            return [(details[0], batch)]
        missing = [d["name"] for d in details if d["name"] not in batch]
        if missing:
            raise RuntimeFailure(f"LiteRT: the artifact's input {missing[0]!r} is not among "
                                 f"the inputs fed ({', '.join(batch)})")
        return [(d, np.asarray(batch[d["name"]])) for d in details]

    def invoke(self) -> None:
        self._interpreter.invoke()

    def infer_impl(self, batch: Batch) -> np.ndarray | list[np.ndarray]:
        try:
            try:
                results = self._invoked(batch)
            except RuntimeError as exc:  # XNNPACK may prepare (and refuse) at the first invoke
                if not self._falls_back(exc):
                    raise
                results = self._invoked(batch)
        except RuntimeFailure:
            raise
        except Exception as exc:
            raise RuntimeFailure(f"LiteRT failed: {first_line(exc)}") from None
        outputs = []
        for out, result in zip(self._outputs, results, strict=True):
            if out["dtype"] != np.float32:
                scale, zero_point = out["quantization"]
                outputs.append(dequantize(result, scale, zero_point))
            else:
                outputs.append(np.asarray(result, dtype=np.float32))
        return outputs[0] if len(outputs) == 1 else outputs

    def _invoked(self, batch: Batch) -> list[np.ndarray]:
        self.prepare(batch)
        interpreter = self._interpreter
        for inp, data in self._fed(batch):
            if inp["dtype"] != np.float32:
                scale, zero_point = inp["quantization"]
                data = quantize(data, scale, zero_point, np.dtype(inp["dtype"]))
            interpreter.set_tensor(inp["index"], data)
        interpreter.invoke()
        return [np.asarray(interpreter.get_tensor(out["index"])) for out in self._outputs]
