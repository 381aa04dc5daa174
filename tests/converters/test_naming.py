"""Keras layer paths resolve to exactly their own converter names, under default layer names."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import converters
from converters.naming import belongs_to, matching_names


def test_a_path_owns_only_its_own_names() -> None:
    assert belongs_to("conv2d", "conv2d/conv2d_1/convolution")
    assert not belongs_to("conv2d", "conv2d_8/conv2d_8_1/convolution")
    assert not belongs_to("add", "batch_normalization_14/batchnorm/add_1")
    assert belongs_to("backbone/conv2d", "x;backbone/conv2d/conv2d_3/Relu")
    assert not belongs_to("backbone/conv2d", "backbone/conv2d_1/conv2d_4/Relu")


@pytest.fixture(scope="module")
def default_named():  # type: ignore[no-untyped-def]
    import keras

    # Default names count per process: start again from "conv2d", whatever ran before here.
    keras.backend.clear_session()
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for _ in range(11):
        x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(x))
    return model, converters.ConversionSource(model, (None, 16, 16, 3))


@pytest.mark.parametrize("target", ["tflite-fp32", "onnx-fp32"])
def test_each_default_named_layer_resolves_to_its_own_ops(default_named, target: str) -> None:  # type: ignore[no-untyped-def]
    from ai_edge_litert.interpreter import Interpreter

    model, source = default_named
    content = converters.convert(converters.TARGETS[target], source, None)
    if target.startswith("tflite"):
        names = [d["name"] for d in Interpreter(model_content=content).get_tensor_details()]
    else:
        names = [n.name for n in onnx.load_from_string(content).graph.node]
    layers = [layer.name for layer in model.layers[1:]]
    owned = {layer: matching_names([layer], names) for layer in layers}
    assert all(owned.values()), {k: v for k, v in owned.items() if not v}
    for layer, found in owned.items():  # nobody else's ops: conv2d never takes conv2d_8's
        assert all(not belongs_to(other, name) for name in found for other in layers
                   if other != layer and not belongs_to(other, layer))


def test_keep_float_denies_exactly_the_named_layer(default_named) -> None:  # type: ignore[no-untyped-def]
    from qcheck.load import ModelFeed, bundled_images
    from qcheck.types import InputRange

    _model, source = default_named
    calib, _ = bundled_images((16, 16))
    content = converters.convert(
        converters.TARGETS["onnx-int8"], source, ModelFeed(calib, InputRange(0, 1)).samples,
        options=converters.ConversionOptions(keep_float=("conv2d",)))
    graph = onnx.load_from_string(content).graph
    quantized_inputs = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    kept = [n for n in graph.node if n.op_type == "Conv"
            and not any(i in quantized_inputs for i in n.input[1:2])]
    assert len(kept) == 1 and np.all([belongs_to("conv2d", n.name) or any(
        belongs_to("conv2d", i) for i in n.input) for n in kept])
