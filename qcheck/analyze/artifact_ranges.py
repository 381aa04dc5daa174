"""The activation ranges a converted artifact actually stores, by Keras layer.

A converter does not always keep the range calibration measured: TFLite shares one scale
between an ``Add`` and the convolution feeding it, makes pooling and resizing reuse their
input's scale, and splits ``Rescaling`` into a multiply and an add. Simulating with the
artifact's own scale and zero point per layer output reproduces those choices.

A stored tensor is a layer's *output* when the op that produced it belongs to the layer and no
op reading it still does (a separable convolution's depthwise half, or the input transposed for
a depthwise convolution, are the layer's intermediates, not its output). Ops are owned by name
(the export scopes every op under its layer's path): TFLite by the first part of a fused
``a;b;c`` name (a Conv2D, BatchNormalization and ReLU fused into one op store one output, the
op named first), ONNX by the node's name, its outputs, or the weights it reads (tf2onnx renames
some nodes, ``Conv__21``, but not their weights). Layers the artifact does not quantize on their
own have no range here, and the simulation leaves their outputs in float, as the artifact does.

Each range is ``(scale, zero_point)`` on unsigned codes (0…255 for 8 bits; int8 zero points
are shifted by 128, which represents the same real values) or, for 16-bit, on symmetric codes
with zero point 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from converters.naming import belongs_to
from qcheck.types import Format

__all__ = ["StoredTensor", "artifact_ranges"]

Range = tuple[float, float]


@dataclass(frozen=True)
class StoredTensor:
    """A quantized activation tensor: who made it, who reads it, how it is stored."""

    producer: Sequence[str]  # names of the producing op, most telling first
    consumers: Sequence[Sequence[str]]  # names of each op that reads it
    range: Range


def artifact_ranges(format: Format, content: bytes, layers: Iterable[str],
                    output_layer: str | None = None) -> dict[str, Range]:
    """Per Keras layer (by path), the quantization of its output tensor in the artifact;
    layers it keeps in float are left out. TFLite renames the model's output tensor, so
    ``output_layer`` names the layer that produces it."""
    try:
        tensors = _tflite_tensors(content, output_layer) if format is Format.TFLITE \
            else _onnx_tensors(content)
    except Exception:  # an artifact qcheck cannot read simply gives no ranges
        return {}
    paths = list(layers)
    found: dict[str, Range] = {}
    for tensor in tensors:
        owner = _owner(tensor.producer, paths)
        if owner is None or any(belongs_to(owner, name) for names in tensor.consumers
                                for name in names):
            continue  # not a layer's, or an intermediate its own layer reads on
        found[owner] = tensor.range
    return found


def _owner(names: Sequence[str], layers: Sequence[str]) -> str | None:
    """The layer whose op made the tensor: a fused TFLite op's output is its first part's."""
    for name in names:
        for layer in layers:
            if belongs_to(layer, name.split(";")[0]):
                return layer
    return None


def _stored(scale: float, zero: float, dtype: np.dtype) -> Range | None:
    if scale <= 0 or dtype not in (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16),
                                   np.dtype(np.uint16)):
        return None
    shift = 128 if dtype == np.dtype(np.int8) else 0
    return float(scale), float(zero + shift)


def _tflite_tensors(content: bytes, output_layer: str | None) -> list[StoredTensor]:
    """Activation tensors in execution order, with the names of the ops reading them."""
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

    def name(index: int) -> str:
        if output_layer is not None and index in outputs:
            return f"{output_layer}/{details[index]['name']}"
        return str(details[index]["name"])

    readers: dict[int, list[list[str]]] = {}
    for op in ops:
        for index in op["inputs"]:
            readers.setdefault(int(index), []).append([name(int(i)) for i in op["outputs"]
                                                       if int(i) in details])
    found = []
    for op in ops:
        for index in (int(i) for i in op["outputs"]):
            detail = details.get(index)
            if detail is None:
                continue
            scale, zero = detail["quantization"]
            stored = _stored(scale, zero, np.dtype(detail["dtype"]))
            if stored is not None:
                found.append(StoredTensor([name(index)], readers.get(index, []), stored))
    return found


def _onnx_tensors(content: bytes) -> list[StoredTensor]:
    """Tensors entering a QuantizeLinear node (activations, not weights), in graph order."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(content).graph
    constants: dict[str, Any] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def names(node: Any) -> list[str]:
        """The node's own names, then the weights it reads (through their DequantizeLinear)."""
        weights = []
        for name in node.input:
            source = producers.get(name)
            if name in constants:
                weights.append(name)
            elif source is not None and source.op_type == "DequantizeLinear" \
                    and source.input[0] in constants:
                weights.append(source.input[0])
        return [node.name, *node.output, *weights]

    def consumers(tensor: str) -> list[list[str]]:
        """The ops that read ``tensor``, looking through its QuantizeLinear/DequantizeLinear."""
        found = []
        for reader in readers.get(tensor, []):
            if reader.op_type in ("QuantizeLinear", "DequantizeLinear"):
                found.extend(consumers(reader.output[0]))
            else:
                found.append(names(reader))
        return found

    tensors = []
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in constants:
            continue
        scale = constants.get(node.input[1])
        zero = constants.get(node.input[2]) if len(node.input) > 2 else np.uint8(0)
        producer = producers.get(node.input[0])
        if scale is None or np.size(scale) != 1 or zero is None or producer is None:
            continue
        stored = _stored(float(scale), float(np.asarray(zero)), np.asarray(zero).dtype)
        if stored is not None:
            tensors.append(StoredTensor(names(producer), consumers(node.output[0]), stored))
    return tensors
