"""TFLite artifacts on the LiteRT interpreter, with quantized inputs and outputs handled."""

from __future__ import annotations

from typing import Any

import numpy as np

from qcheck.errors import RuntimeFailure, first_line
from qcheck.numerics import dequantize, quantize
from qcheck.quiet import native_quiet
from qcheck.runners.base import ArtifactRunner

__all__ = ["LiteRTRunner", "dequantize", "quantize"]


class LiteRTRunner(ArtifactRunner):
    name = "litert"
    _interpreter: Any = None
    _batch = 0

    def activate_impl(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        try:
            with native_quiet():
                self._interpreter = Interpreter(model_content=self.model_content,
                                                num_threads=self.num_threads)
        except Exception as exc:
            raise RuntimeFailure(f"LiteRT refused the model: {first_line(exc)}") from None
        self._batch = 0

    def deactivate_impl(self) -> None:
        self._interpreter = None

    @property
    def input_details(self) -> dict[str, Any]:
        return dict(self._interpreter.get_input_details()[0])

    @property
    def output_details(self) -> dict[str, Any]:
        return dict(self._interpreter.get_output_details()[0])

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        interpreter = self._interpreter
        try:
            if batch.shape[0] != self._batch:
                interpreter.resize_tensor_input(self.input_details["index"], list(batch.shape))
                with native_quiet():
                    interpreter.allocate_tensors()
                self._batch = batch.shape[0]
            inp, out = self.input_details, self.output_details
            data = batch
            if inp["dtype"] != np.float32:
                scale, zero_point = inp["quantization"]
                data = quantize(batch, scale, zero_point, np.dtype(inp["dtype"]))
            interpreter.set_tensor(inp["index"], data)
            interpreter.invoke()
            result = interpreter.get_tensor(out["index"])
        except Exception as exc:
            raise RuntimeFailure(f"LiteRT failed: {first_line(exc)}") from None
        if out["dtype"] != np.float32:
            scale, zero_point = out["quantization"]
            return dequantize(result, scale, zero_point)
        return np.asarray(result, dtype=np.float32)
