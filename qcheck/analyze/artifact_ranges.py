"""The activation ranges a converted artifact actually stores, by Keras layer.

A converter does not always keep the range calibration measured: TFLite shares one scale
between an ``Add`` and the convolution feeding it, makes pooling and resizing reuse their
input's scale, and splits ``Rescaling`` into a multiply and an add. Simulating with the
artifact's own scale and zero point per layer output reproduces those choices.

Layers the artifact does not quantize on their own (fused into the op that follows them, such
as a convolution before its BatchNormalization and ReLU) have no range here: the simulation
leaves their outputs in float, as the artifact does.

Each range is ``(scale, zero_point)`` on unsigned codes (0…255 for 8 bits; int8 zero points
are shifted by 128, which represents the same real values) or, for 16-bit, on symmetric codes
with zero point 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from converters.naming import matching_names
from qcheck.types import Format

__all__ = ["artifact_ranges"]

Range = tuple[float, float]


def artifact_ranges(format: Format, content: bytes, layers: Iterable[str],
                    output_layer: str | None = None) -> dict[str, Range]:
    """Per Keras layer, the quantization of its output tensor in the artifact (the last
    quantized tensor that belongs to it); layers it keeps in float are left out. TFLite renames
    the model's output tensor, so ``output_layer`` names the layer that produces it."""
    try:
        tensors = _tflite_tensors(content, output_layer) if format is Format.TFLITE \
            else _onnx_tensors(content)
    except Exception:  # an artifact qcheck cannot read simply gives no ranges
        return {}
    found: dict[str, Range] = {}
    for layer in layers:
        # TFLite names a fused tensor "final;inner;…": only the op named first produced it
        # (a Conv2D, BatchNormalization and ReLU fused into one op share one output).
        owned = [(name, q) for name, q in tensors
                 if matching_names([layer], [name.split(";")[0] if format is Format.TFLITE
                                             else name])]
        if owned:
            found[layer] = owned[-1][1]
    return found


def _tflite_tensors(content: bytes, output_layer: str | None) -> list[tuple[str, Range]]:
    """Activation tensors in execution order, each with its (scale, zero point)."""
    from ai_edge_litert.interpreter import Interpreter

    from qcheck.quiet import native_quiet

    with native_quiet():
        interpreter = Interpreter(model_content=content)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    outputs = {int(d["index"]) for d in interpreter.get_output_details()}
    for op in ops:  # a final QUANTIZE to the I/O type: its input is the layer's output too
        if op["op_name"] == "QUANTIZE" and outputs & {int(i) for i in op["outputs"]}:
            outputs |= {int(i) for i in op["inputs"]}
    ordered: list[tuple[str, Range]] = []
    for op in ops:
        for index in op["outputs"]:
            detail = details.get(int(index))
            if detail is None:
                continue
            if output_layer is not None and int(index) in outputs:
                detail = {**detail, "name": f"{output_layer}/{detail['name']}"}
            scale, zero = detail["quantization"]
            dtype = np.dtype(detail["dtype"])
            if scale <= 0 or dtype not in (np.dtype(np.int8), np.dtype(np.uint8),
                                          np.dtype(np.int16)):
                continue
            shift = 128 if dtype == np.dtype(np.int8) else 0
            ordered.append((detail["name"], (float(scale), float(zero + shift))))
    return ordered


def _onnx_tensors(content: bytes) -> list[tuple[str, Range]]:
    """Tensors entering a QuantizeLinear node (activations, not weights), in graph order."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(content).graph
    constants: dict[str, Any] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    ordered: list[tuple[str, Range]] = []
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in constants:
            continue
        scale = constants.get(node.input[1])
        zero = constants.get(node.input[2]) if len(node.input) > 2 else np.uint8(0)
        if scale is None or np.size(scale) != 1 or zero is None:
            continue
        shift = 128 if np.asarray(zero).dtype == np.int8 else 0
        ordered.append((node.input[0], (float(scale), float(np.asarray(zero)) + shift)))
    return ordered
