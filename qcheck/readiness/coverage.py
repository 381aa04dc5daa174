"""Which ops of an artifact the phone may run differently: float ops left in a quantized
artifact, ops the TFLite GPU delegate cannot take, and the op XNNPACK refuses; each named by
its node, its op and the Keras layer it came from."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from converters.naming import belongs_to
from qcheck.quiet import native_quiet
from qcheck.types import Format

__all__ = ["Issue", "float_ops", "gpu_issues", "gpu_report", "inspect", "layer_of",
           "tflite_ops", "xnnpack_refusal"]

# XNNPACK's quantized convolutions need input scale × weight scale / output scale below this.
XNNPACK_MAX_REQUANT = 256.0
_INT = {"int8", "uint8", "int16", "uint16", "int32", "int64", "bool"}
_LAYOUT = {"QUANTIZE", "DEQUANTIZE", "RESHAPE", "SHAPE", "STRIDED_SLICE", "PACK", "TRANSPOSE",
           "Cast", "QuantizeLinear", "DequantizeLinear", "Transpose", "Reshape", "Shape",
           "Identity", "Squeeze", "Unsqueeze", "Concat", "Gather", "Slice", "Tile", "Expand",
           "Flatten", "Split", "DepthToSpace", "SpaceToDepth"}


@dataclass(frozen=True)
class Issue:
    kind: str  # "runtime": the default kernels refused; "float_op"; "gpu"
    node: int | None
    op: str | None
    layer: str | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "node": self.node, "op": self.op, "layer": self.layer,
                "detail": self.detail}


def inspect(fmt: Format, content: bytes, layers: Sequence[str], *, quantized: bool,
            refused: str | None) -> list[Issue]:
    """Everything about an artifact a phone's runtime may treat differently from this check:
    the op the default kernels refused, float ops left in a quantized artifact, and (TFLite)
    the ops the GPU delegate cannot take."""
    found = []
    if refused is not None and fmt is Format.TFLITE:
        found.append(xnnpack_refusal(content, refused, layers))
    if quantized:
        found.extend(float_ops(fmt, content, layers))
    if fmt is Format.TFLITE:
        found.extend(gpu_issues(gpu_report(content), content, layers))
    return found


def layer_of(names: Sequence[str], layers: Sequence[str]) -> str | None:
    """The Keras layer (by path) a converter's tensor or node names belong to."""
    for name in names:
        for layer in sorted(layers, key=len, reverse=True):
            if belongs_to(layer, name.split(";")[0]):
                return layer
    return None


def tflite_ops(content: bytes) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """The artifact's ops (LiteRT's details: name, input and output tensor indices) and its
    tensors by index."""
    from ai_edge_litert.interpreter import Interpreter

    with native_quiet():
        interpreter = Interpreter(model_content=content)
    return interpreter._get_ops_details(), {d["index"]: d for d in
                                            interpreter.get_tensor_details()}


def float_ops(fmt: Format, content: bytes, layers: Sequence[str]) -> list[Issue]:
    """Compute ops a quantized artifact still runs in float."""
    if fmt is Format.TFLITE:
        ops, tensors = tflite_ops(content)
        found = []
        for op in ops:
            outputs = [tensors[int(i)] for i in op["outputs"] if int(i) in tensors]
            if op["op_name"] in _LAYOUT or not outputs:
                continue
            if all(np.dtype(t["dtype"]) == np.float32 for t in outputs):
                names = [t["name"] for t in outputs]
                found.append(Issue("float_op", int(op["index"]), op["op_name"],
                                   layer_of(names, layers), "runs in float32"))
        return found
    return _onnx_float_nodes(content, layers)


def _onnx_float_nodes(content: bytes, layers: Sequence[str]) -> list[Issue]:
    import onnx

    graph = onnx.load_from_string(content).graph
    producer = {output: node for node in graph.node for output in node.output}

    def dequantized(name: str) -> bool:
        """Whether a tensor holds dequantized integers (through any data-movement ops)."""
        seen = set()
        while name in producer and name not in seen:
            seen.add(name)
            node = producer[name]
            if node.op_type == "DequantizeLinear":
                return True
            if node.op_type not in _LAYOUT or not node.input:
                return False
            name = node.input[0]
        return False

    found = []
    for index, node in enumerate(graph.node):
        if node.op_type in _LAYOUT or not node.input:
            continue
        if not dequantized(node.input[0]):
            found.append(Issue("float_op", index, node.op_type,
                               layer_of([node.name, *node.output, *node.input], layers),
                               "its input is not dequantized: it runs in float"))
    return found


def gpu_report(content: bytes) -> str:
    """The TFLite model analyzer's report on the artifact, its GPU-delegate check included
    (LiteRT's own build of it: no TensorFlow needed)."""
    from ai_edge_litert import _pywrap_analyzer_wrapper as analyzer

    return str(analyzer.ModelAnalyzer(content, False, True))


_WARNING = re.compile(r"GPU COMPATIBILITY WARNING: (.*)")
_OP = re.compile(r"^\s*Op#(\d+) (\w+)")


def gpu_issues(report: str, content: bytes, layers: Sequence[str]) -> list[Issue]:
    """The TFLite analyzer's GPU-delegate warnings (its printed report), by op and layer."""
    ops, tensors = tflite_ops(content)
    found, current = [], None
    for line in report.splitlines():
        if (match := _OP.match(line)) is not None:
            current = int(match.group(1)), match.group(2)
        elif (warning := _WARNING.search(line)) is not None:
            node, op = current if current else (None, None)
            names = [tensors[int(i)]["name"] for i in ops[node]["outputs"]
                     if int(i) in tensors] if node is not None and node < len(ops) else []
            found.append(Issue("gpu", node, op, layer_of(names, layers), warning.group(1)))
    seen = {issue.node for issue in found}
    for op in ops:  # TensorFlow (Flex) and custom ops run on no delegate, whatever it says
        if int(op["index"]) not in seen and (op["op_name"].startswith("Flex")
                                              or op["op_name"] == "CUSTOM"):
            names = [tensors[int(i)]["name"] for i in op["outputs"] if int(i) in tensors]
            found.append(Issue("gpu", int(op["index"]), op["op_name"], layer_of(names, layers),
                               "a TensorFlow (Flex) or custom op: no delegate runs it"))
    return found


def xnnpack_refusal(content: bytes, message: str, layers: Sequence[str]) -> Issue:
    """Which op XNNPACK refused: the quantized convolution whose requantization scale is past
    XNNPACK's limit (the delegate's own message names only its delegate node)."""
    ops, tensors = tflite_ops(content)
    for op in ops:
        if op["op_name"] not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
                                 "TRANSPOSE_CONV"):
            continue
        ratio = _requant_ratio(op, tensors)
        if ratio is not None and ratio >= XNNPACK_MAX_REQUANT:
            names = [tensors[int(i)]["name"] for i in op["outputs"] if int(i) in tensors]
            return Issue("runtime", int(op["index"]), op["op_name"], layer_of(names, layers),
                         f"XNNPACK refused to prepare ({message}); this op's requantization "
                         f"scale is {ratio:.3g}, XNNPACK takes less than "
                         f"{XNNPACK_MAX_REQUANT:g}: measured on the built-in kernels instead")
    return Issue("runtime", None, None, None, f"XNNPACK refused to prepare ({message}): "
                 "measured on the built-in kernels instead")


def _requant_ratio(op: dict[str, Any], tensors: dict[int, dict[str, Any]]) -> float | None:
    found = [tensors.get(int(i)) for i in (*op["inputs"][:2], op["outputs"][0])]
    if len(found) != 3:
        return None
    scales = []
    for tensor in found:
        if tensor is None:
            return None
        scales.append(np.asarray(tensor["quantization_parameters"]["scales"]))
    if any(s.size == 0 for s in scales):
        return None
    return float(scales[0].max() * scales[1].max() / scales[2].min())
