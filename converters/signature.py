"""A TFLite model's signature, which ai-edge-quantizer needs and a frozen function's
conversion lacks (the converter writes one only when it can save the function as a
SavedModel, which a frozen function often cannot be); and, for a model with several inputs
or outputs, its I/O tensors named as in Keras."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from converters.tflite_edit import edited

__all__ = ["SIGNATURE", "named_io", "with_signature"]

SIGNATURE = "serving_default"


def with_signature(content: bytes, input_names: Sequence[str],
                   output_names: Sequence[str]) -> bytes:
    """``content`` with a ``serving_default`` signature over its inputs and outputs, in
    order."""
    return _rewritten(content, input_names, output_names, rename=False)


def named_io(content: bytes, input_names: Sequence[str], output_names: Sequence[str]) -> bytes:
    """``content`` with its output tensors named as the Keras outputs (the converter calls
    them ``Identity``, ``Identity_1``, …) and a signature over every input and output, so an
    app and every runner find each tensor by the name the model gives it."""
    return _rewritten(content, input_names, output_names, rename=True)


def _rewritten(content: bytes, input_names: Sequence[str], output_names: Sequence[str], *,
               rename: bool) -> bytes:
    from ai_edge_litert import schema_py_generated as schema

    def tensor(name: str, index: int) -> Any:
        mapped = schema.TensorMapT()
        mapped.name, mapped.tensorIndex = name, int(index)
        return mapped

    def edit(model: Any) -> None:
        graph = model.subgraphs[0]
        if len(graph.inputs) != len(input_names) or len(graph.outputs) != len(output_names):
            raise ValueError(f"the TFLite model has {len(graph.inputs)} inputs and "
                             f"{len(graph.outputs)} outputs; expected {len(input_names)} and "
                             f"{len(output_names)}")
        if rename:
            for index, name in zip(graph.outputs, output_names, strict=True):
                graph.tensors[int(index)].name = name.encode()
        model.signatureDefs = [schema.SignatureDefT(
            inputs=[tensor(n, i) for n, i in zip(input_names, graph.inputs, strict=True)],
            outputs=[tensor(n, i) for n, i in zip(output_names, graph.outputs, strict=True)],
            signatureKey=SIGNATURE)]

    return edited(content, edit)
