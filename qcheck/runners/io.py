"""What goes in and out of an artifact: each I/O tensor's name, type, shape and quantization,
read from the artifact itself (not from what qcheck asked the converter for)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from qcheck.quiet import native_quiet
from qcheck.types import Format

__all__ = ["TensorIO", "artifact_io", "io_notes", "output_range"]


@dataclass(frozen=True)
class TensorIO:
    name: str
    dtype: str
    shape: tuple[int | None, ...]
    # Real value = (code − zero_point) × scale for quantized tensors; ``None`` for float ones.
    scale: float | None = None
    zero_point: int | None = None
    # The quantization of the values just before an output is dequantized (float I/O around
    # an integer model), when the tensor itself is float.
    inner_scale: float | None = None
    inner_zero_point: int | None = None
    inner_dtype: str | None = None

    @property
    def representable(self) -> tuple[float, float] | None:
        """The real values this tensor (or the integer tensor behind it) can hold."""
        scale, zero = self.scale, self.zero_point
        dtype: str | None = self.dtype
        if scale is None:
            scale, zero, dtype = self.inner_scale, self.inner_zero_point, self.inner_dtype
        if scale is None or zero is None or dtype is None:
            return None
        info = np.iinfo(np.dtype(dtype))
        return (info.min - zero) * scale, (info.max - zero) * scale


def artifact_io(fmt: Format, content: bytes, notes: dict[str, Any] | None = None
                ) -> tuple[list[TensorIO], list[TensorIO]]:
    """(inputs, outputs) of a ``.tflite`` or ``.onnx`` artifact; from ``notes`` (a run job's,
    see ``io_notes``) when the worker that ran it read them already, so this process need not
    load ONNX or an interpreter to read them again."""
    known = (notes or {}).get("io")
    if known is not None:
        return ([TensorIO(**_typed(t)) for t in known["inputs"]],
                [TensorIO(**_typed(t)) for t in known["outputs"]])
    return _tflite_io(content) if fmt is Format.TFLITE else _onnx_io(content)


def io_notes(fmt: Format, content: bytes) -> dict[str, Any]:
    """The artifact's I/O as a job's notes carry it (JSON), read where the artifact is run."""
    inputs, outputs = artifact_io(fmt, content)
    return {"io": {"inputs": [asdict(t) for t in inputs],
                   "outputs": [asdict(t) for t in outputs]}}


def _typed(stored: dict[str, Any]) -> dict[str, Any]:
    return {**stored, "shape": tuple(stored["shape"])}


def output_range(fmt: Format, content: bytes | None, name: str | None = None,
                 notes: dict[str, Any] | None = None) -> tuple[float, float] | None:
    """The real values the artifact's output (``name``; None: the first) can take, if it is
    integer-quantized."""
    if content is None:
        return None
    try:
        outputs = artifact_io(fmt, content, notes)[1]
        chosen = outputs[0] if name is None else next(o for o in outputs if o.name == name)
        return chosen.representable
    except Exception:  # an artifact qcheck cannot read has no range to offer
        return None


def _quantization(detail: dict[str, Any]) -> tuple[float | None, int | None]:
    scale, zero = detail.get("quantization", (0.0, 0))
    return (float(scale), int(zero)) if scale else (None, None)


def _tflite_io(content: bytes) -> tuple[list[TensorIO], list[TensorIO]]:
    from ai_edge_litert.interpreter import Interpreter

    with native_quiet():
        interpreter = Interpreter(model_content=content)
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    behind = {int(op["outputs"][0]): tensors[int(op["inputs"][0])]
              for op in interpreter._get_ops_details() if op["op_name"] == "DEQUANTIZE"
              and len(op["inputs"]) and int(op["inputs"][0]) in tensors}

    def described(detail: dict[str, Any]) -> TensorIO:
        scale, zero = _quantization(detail)
        inner = behind.get(int(detail["index"]))
        inner_scale, inner_zero = _quantization(inner) if inner is not None else (None, None)
        return TensorIO(detail["name"], np.dtype(detail["dtype"]).name,
                        tuple(int(d) if d > 0 else None for d in detail["shape_signature"]),
                        scale, zero, inner_scale, inner_zero,
                        np.dtype(inner["dtype"]).name if inner is not None and inner_scale
                        is not None else None)

    return ([described(d) for d in interpreter.get_input_details()],
            [described(d) for d in interpreter.get_output_details()])


def _onnx_io(content: bytes) -> tuple[list[TensorIO], list[TensorIO]]:
    import onnx
    from onnx import helper, numpy_helper

    graph = onnx.load_from_string(content).graph
    # Only the scales and zero points of dequantized outputs are read: no weight is copied.
    constants = {i.name: i for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}

    def described(value: Any) -> TensorIO:
        kind = value.type.tensor_type
        shape = tuple(d.dim_value or None for d in kind.shape.dim)
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(kind.elem_type)).name
        node = producers.get(value.name)
        while node is not None and node.op_type in ("Cast", "Identity", "Transpose"):
            node = producers.get(node.input[0])
        if node is None or node.op_type != "DequantizeLinear" or node.input[1] not in constants:
            return TensorIO(value.name, dtype, shape)
        scale = numpy_helper.to_array(constants[node.input[1]])
        zero = numpy_helper.to_array(constants[node.input[2]]) if len(node.input) > 2 \
            and node.input[2] in constants else np.asarray(np.uint8(0))
        if scale.size != 1:
            return TensorIO(value.name, dtype, shape)
        return TensorIO(value.name, dtype, shape, inner_scale=float(scale),
                        inner_zero_point=int(zero), inner_dtype=zero.dtype.name)

    initial = set(constants)
    return ([described(v) for v in graph.input if v.name not in initial],
            [described(v) for v in graph.output])
