"""The I/O contract of an artifact, as an app developer needs it: each input and output tensor
with its type, shape, layout and quantization, what to feed and how to read the result back
as pixels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qcheck.outputs import OutputKind, OutputSpec
from qcheck.runners.io import TensorIO, artifact_io
from qcheck.types import Format, InputRange

__all__ = ["FEED_ROUNDING", "io_change", "io_contract"]


def _pixels(value_range: InputRange) -> str:
    if (value_range.low, value_range.high) == (0.0, 1.0):
        return "pixel / 255"
    if (value_range.low, value_range.high) == (0.0, 255.0):
        return "pixel"
    return "pixel / 127.5 − 1"


# How the runtime's own QUANTIZE rounds a value that falls halfway between two codes: LiteRT's
# optimized and XNNPACK kernels and ONNX Runtime's QuantizeLinear round half to even (LiteRT's
# reference kernels round half away from zero); qcheck feeds the same way (numpy's round).
# Inputs in −1:1 with scale 2/255 land every 8-bit pixel exactly on such a tie.
FEED_ROUNDING = "round half to even"


def _tensor(tensor: TensorIO) -> dict[str, Any]:
    # The artifact's exact float32 scale: an app codes against these numbers.
    return {"name": tensor.name, "dtype": tensor.dtype, "shape": list(tensor.shape),
            "layout": "NHWC" if len(tensor.shape) == 4 else None,
            "scale": None if tensor.scale is None else float(tensor.scale),
            "zero_point": None if tensor.zero_point is None else int(tensor.zero_point)}


def io_contract(fmt: Format, content: bytes, input_range: InputRange,
                output: OutputSpec | Mapping[str, OutputSpec], image_input: str | None = None,
                notes: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every input and output tensor; ``output`` is how the output is read, or by name how
    each of several is; ``image_input`` names the input the images feed when there are
    several (the others take what ``--feed`` gave them); ``notes``, the run job's, may carry
    the tensors already read."""
    inputs, outputs = artifact_io(fmt, content, notes)
    specs = output if isinstance(output, Mapping) else {"": output}
    fed = []
    for tensor in inputs:
        entry = _tensor(tensor)
        value = f"values in {input_range} ({_pixels(input_range)})"
        if len(inputs) > 1 and tensor.name != image_input:
            value = "values as the float model takes them (what --feed gave it)"
        entry["feed"] = value if tensor.scale is None else (
            f"{value}, quantized: code = round(value / {float(tensor.scale)!r}) + "
            f"{tensor.zero_point}, as {tensor.dtype}, {FEED_ROUNDING} (the runtime's own "
            "QUANTIZE rounding)")
        if tensor.scale is not None:
            entry["rounding"] = FEED_ROUNDING
        fed.append(entry)
    read = []
    for tensor in outputs:
        entry = _tensor(tensor)
        spec = specs.get(tensor.name, next(iter(specs.values())))
        back = "" if tensor.scale is None else (
            f"value = (code − {tensor.zero_point}) × {float(tensor.scale)!r}; ")
        if spec.kind is OutputKind.IMAGE:
            how = f"values in {spec.range}: pixel = {_inverse(spec.range)}"
        elif spec.kind is OutputKind.CLASSES:
            how = "the class is the arg-max over the last axis"
        else:
            how = "values as the float model's"
        entry["read"] = back + how
        read.append(entry)
    return {"inputs": fed, "outputs": read}


def _inverse(value_range: InputRange) -> str:
    if (value_range.low, value_range.high) == (0.0, 1.0):
        return "clip(value, 0, 1) × 255"
    if (value_range.low, value_range.high) == (0.0, 255.0):
        return "clip(value, 0, 255)"
    return "(clip(value, −1, 1) + 1) × 127.5"


def io_change(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """What a fix changes in the I/O an app sees (``None``: nothing)."""
    changes = []
    for side in ("inputs", "outputs"):
        for old, new in zip(before[side], after[side], strict=False):
            if _quantization(old) != _quantization(new):
                changes.append(f"{side[:-1]} {old['name']}: {_quantization(old)} becomes "
                               f"{_quantization(new)}")
    return "; ".join(changes) or None


def _quantization(tensor: dict[str, Any]) -> str:
    if tensor["scale"] is None:
        return str(tensor["dtype"])
    return f"{tensor['dtype']} (scale {tensor['scale']:.6g}, zero point {tensor['zero_point']})"
