"""Which per-layer choices a toolchain can build, known before converting.

For TFLite, a layer can take 16-bit activations only if ai-edge-quantizer (which builds every
int16 layer) has a 16-bit-activation kernel for every op the layer lowers to; TensorFlow's
converter is not asked (it mixes no widths). The table is learned from the quantizer itself:
each TFLite op name is put to its own op-config check with the exact 16-bit recipe entry
qcheck sends (``converters.aeq``), once per quantizer version, and cached. A layer whose ops are
not all in it is never tried at int16 (``SQUARE`` and ``NEG`` of a normalization,
``DEPTH_TO_SPACE`` of a pixel shuffle); float stays open to it. ONNX Runtime's quantizer builds
16-bit QDQ for every op, so ONNX choices are not ruled out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from qcheck.cache import Cache
from qcheck.readiness.coverage import layer_of, tflite_ops
from qcheck.session import Session
from qcheck.types import Format, TargetSpec

__all__ = ["KernelTable", "kernel_table", "layer_ops", "ruled_out"]

# Ops an integer artifact adds around the model's own (its I/O), which no layer owns.
_IO_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})


@dataclass(frozen=True)
class KernelTable:
    """What one quantizer version builds with 16-bit activations, by TFLite op name."""

    tool: str  # "ai-edge-quantizer 0.x.y"
    int16_ops: frozenset[str]

    def to_dict(self) -> dict[str, object]:
        return {"tool": self.tool, "int16_ops": sorted(self.int16_ops)}


def kernel_table(cache: Cache) -> KernelTable | None:
    """ai-edge-quantizer's 16-bit table (None: it is not installed), from the cache or
    learned now."""
    try:
        version = metadata.version("ai-edge-quantizer")
    except metadata.PackageNotFoundError:
        return None
    key = Cache.key(kind="kernels", tool="ai-edge-quantizer", version=version)

    def parse(path: Path) -> KernelTable:
        data = json.loads(path.read_text(encoding="utf-8"))
        return KernelTable(str(data["tool"]), frozenset(data["int16_ops"]))

    found = cache.read(key, "kernels.json", parse)
    if found is None:
        found = KernelTable(f"ai-edge-quantizer {version}", _learn_int16_ops())
        cache.put_json(key, "kernels.json", found.to_dict())
    return found


def _learn_int16_ops() -> frozenset[str]:
    """Every TFLite op name ai-edge-quantizer accepts with qcheck's 16-bit entry."""
    from ai_edge_quantizer import algorithm_manager, qtyping

    from converters.aeq import ALGORITHM, op_config

    config = qtyping.OpQuantizationConfig.from_dict(op_config(16, "CHANNELWISE"))
    accepted = set()
    for op in qtyping.TFLOperationName:
        try:
            algorithm_manager.check_op_quantization_config(ALGORITHM, op, config)
        except ValueError:
            continue
        accepted.add(op.value)
    return frozenset(accepted)


def layer_ops(content: bytes, layers: Sequence[str], last_layer: str | None = None
              ) -> dict[str, set[str]]:
    """Per Keras layer, the TFLite op names it lowers to in ``content`` (the op writing the
    graph's output, which the converter names after the output, is ``last_layer``'s)."""
    ops, tensors = tflite_ops(content)
    consumed = {int(i) for op in ops for i in op["inputs"]}
    final = {int(i) for op in ops for i in op["outputs"]} - consumed
    for op in reversed(ops):  # back through the I/O conversions to the model's last op
        if op["op_name"] in _IO_OPS and final & set(op["outputs"]):
            final |= set(op["inputs"])
    found: dict[str, set[str]] = {}
    for op in ops:
        if op["op_name"] in _IO_OPS:
            continue
        layer = layer_of([tensors[i]["name"] for i in op["outputs"] if i in tensors], layers)
        if last_layer is not None and final & set(op["outputs"]):
            layer = last_layer
        if layer is not None:
            found.setdefault(layer, set()).add(str(op["op_name"]))
    return found


def ruled_out(session: Session, spec: TargetSpec, artifact: bytes | None
              ) -> dict[str, list[str]]:
    """Layers that cannot take 16-bit activations on ``spec``, with the ops that rule them
    out (empty: nothing ruled out, or nothing known)."""
    if spec.format is not Format.TFLITE or artifact is None:
        return {}
    table = kernel_table(session.cache)
    if table is None:
        return {}
    return {layer: sorted(ops - table.int16_ops)
            for layer, ops in layer_ops(artifact, session.info.layers,
                                        session.info.outputs[0].name).items()
            if ops - table.int16_ops}
