"""A TFLite model's signature, which ai-edge-quantizer needs and a frozen function's
conversion lacks (the converter writes one only when it can save the function as a
SavedModel, which a frozen function often cannot be)."""

from __future__ import annotations

from typing import Any

__all__ = ["SIGNATURE", "with_signature"]

SIGNATURE = "serving_default"


def with_signature(content: bytes, input_name: str) -> bytes:
    """``content`` with a ``serving_default`` signature over its one input and output."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(content, 0)
    graph = model.subgraphs[0]

    def tensor(name: str, index: int) -> Any:
        mapped = schema.TensorMapT()
        mapped.name, mapped.tensorIndex = name, int(index)
        return mapped

    model.signatureDefs = [schema.SignatureDefT(
        inputs=[tensor(input_name, graph.inputs[0])],
        outputs=[tensor("output_0", graph.outputs[0])], signatureKey=SIGNATURE)]
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
