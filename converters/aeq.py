"""TFLite with per-layer activation widths, through ai-edge-quantizer.

TensorFlow's converter quantizes a whole model at one activation width (int8 or int16x8) and
can only deny layers to keep them float; ai-edge-quantizer takes a recipe per op: int8, int16
activations, or no quantization. It starts from a float TFLite with a signature and matches
recipe entries by regular expression on each op's output tensor name, so qcheck resolves
every Keras layer to the exact output names of its ops.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from converters.errors import ConversionError, first_line
from converters.naming import belongs_to
from converters.options import ConversionOptions
from converters.quiet import native_quiet
from converters.signature import SIGNATURE
from converters.source import CalibrationSamples, ConversionSource
from converters.types import TargetSpec

__all__ = ["ALGORITHM", "aeq_recipe", "convert_with_aeq", "layer_outputs", "op_config"]

ALGORITHM = "min_max_uniform_quantize"


def convert_with_aeq(spec: TargetSpec, source: ConversionSource,
                     calibration: CalibrationSamples, options: ConversionOptions) -> bytes:
    """Quantize with ``options``' per-layer choices; every other op int8 (int16 activations
    with ``int16_activations``), weights per channel or per tensor as ``spec`` says."""
    try:
        from ai_edge_quantizer import quantizer
    except ImportError:
        raise ConversionError(
            f"{spec.name}: per-layer int16 needs ai-edge-quantizer "
            "(pip install 'qcheck[plan]')") from None
    float_model = source.tflite_float_signed
    first = source.input_names[0]
    recipe = aeq_recipe(float_model, spec.per_channel, options, source.output_layer)
    try:
        with native_quiet():
            engine = quantizer.Quantizer(float_model, recipe)
            ranges = engine.calibrate(
                {SIGNATURE: [dict(sample) if isinstance(sample, dict) else {first: sample}
                            for sample in calibration()]}, num_threads=1)
            return bytes(engine.quantize(ranges).quantized_model)
    except Exception as exc:  # ai-edge-quantizer raises many types; all are a failed conversion
        raise ConversionError(f"{spec.name}: ai-edge-quantizer failed: {first_line(exc)}"
                              ) from None


def aeq_recipe(float_model: bytes, per_channel: bool, options: ConversionOptions,
               last_layer: str | None = None) -> list[dict[str, Any]]:
    """The ai-edge-quantizer recipe (its JSON form) for ``options`` on ``float_model``
    (``last_layer``: the Keras layer whose op the converter renamed after the output)."""
    granularity = "CHANNELWISE" if per_channel else "TENSORWISE"
    base_bits = 16 if options.int16_activations else 8
    recipe = [_entry(".*", op_config(base_bits, granularity))]
    outputs = layer_outputs(float_model, [*options.int16_layers, *options.keep_float],
                            last_layer)
    for layer in options.int16_layers:
        recipe.append(_entry(_exactly(outputs[layer]), op_config(16, granularity)))
    for layer in options.keep_float:
        recipe.append({"regex": _exactly(outputs[layer]), "operation": "*",
                       "algorithm_key": "no_quantize"})
    return recipe


def layer_outputs(float_model: bytes, layers: Sequence[str], last_layer: str | None = None
                  ) -> dict[str, list[str]]:
    """Per Keras layer, the output tensor names of the TFLite ops that belong to it (by an
    output's name or a constant input's: a renamed final op keeps its weights' names; the
    op writing the graph's output belongs to ``last_layer``)."""
    from ai_edge_litert import schema_py_generated as schema

    graph = schema.Model.GetRootAs(float_model, 0).Subgraphs(0)
    names = [(graph.Tensors(i).Name() or b"").decode() for i in range(graph.TensorsLength())]
    produced = {int(i) for k in range(graph.OperatorsLength())
                for i in graph.Operators(k).OutputsAsNumpy()}
    produced |= {int(i) for i in graph.InputsAsNumpy()}
    graph_outputs = {names[int(i)] for i in graph.OutputsAsNumpy()}
    found: dict[str, list[str]] = {layer: [] for layer in layers}
    for index in range(graph.OperatorsLength()):
        operator = graph.Operators(index)
        outputs = [names[int(i)] for i in operator.OutputsAsNumpy() if int(i) >= 0]
        constants = [names[int(i)] for i in operator.InputsAsNumpy()
                     if int(i) >= 0 and int(i) not in produced]
        for layer in layers:
            final = layer == last_layer and bool(graph_outputs & set(outputs))
            if final or any(belongs_to(layer, name) for name in outputs + constants):
                found[layer].extend(o for o in outputs if o not in found[layer])
    missing = [layer for layer, outs in found.items() if not outs]
    if missing:
        raise ConversionError(f"no TFLite ops belong to {', '.join(missing)}")
    return found


def _exactly(names: Sequence[str]) -> str:
    """A regex for the scopes of exactly these ops: ai-edge-quantizer names an op by its
    output names, each followed by ``;``."""
    return "^(?:(?:" + "|".join(re.escape(name) for name in names) + ");)+$"


def _entry(regex: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"regex": regex, "operation": "*", "algorithm_key": ALGORITHM,
            "op_config": config}


def op_config(activation_bits: int, granularity: str) -> dict[str, Any]:
    # int16 activations are symmetric in LiteRT's 16x8 kernels; int8 ones asymmetric.
    return {
        "activation_tensor_config": {"num_bits": activation_bits,
                                     "symmetric": activation_bits == 16,
                                     "granularity": "TENSORWISE", "dtype": "INT"},
        "weight_tensor_config": {"num_bits": 8, "symmetric": True,
                                 "granularity": granularity, "dtype": "INT"},
        "compute_precision": "INTEGER", "explicit_dequantize": False, "skip_checks": False,
        "min_weight_elements": 0,
    }
