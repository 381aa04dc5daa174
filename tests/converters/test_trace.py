"""The converters trace the model without AutoGraph (its rewrite of the Python it reaches was a
third of the trace) and get the graph AutoGraph gets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from converters.source import ConversionSource
from tests.field_models import architectures, generators, multi_io

ARCHITECTURES: dict[str, Callable[[], Any]] = {
    "mirnet_block": architectures.mirnet_block,  # dual attention, keras.ops nodes, gates
    "vit_classifier": architectures.vit_classifier,  # layer norm, attention, softmax head
    "efficientnet": architectures.efficientnet_classifier,  # swish (a custom gradient)
    "instance_norm_generator": generators.instance_norm_generator,  # custom layer, tanh
    "inpainting_two_inputs": multi_io.inpainting_net,
    "two_heads": multi_io.two_head,
}


def _with_autograph(monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorflow as tf

    monkeypatch.setattr(ConversionSource, "_traced", lambda self, call: tf.function(
        call, input_signature=self.input_specs))


def _nodes(source: ConversionSource) -> dict[str, Any]:
    """The frozen graph's nodes by name, without the process-wide counter TensorFlow names
    custom gradients by (it differs between any two traces)."""
    nodes = {}
    for node in source.frozen_function.graph.as_graph_def().node:
        if "_gradient_op_type" in node.attr:
            del node.attr["_gradient_op_type"]
        nodes[node.name] = node
    return nodes


def _outputs(source: ConversionSource, model: Any) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    inputs = [rng.random((2, *tensor.shape[1:]), dtype=np.float32) for tensor in model.inputs]
    result = source.function(*inputs)
    return [np.asarray(part) for part in (result if isinstance(result, list | tuple)
                                          else [result])]


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_the_graph_is_autographs(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from qcheck.quiet import import_tensorflow

    import_tensorflow()
    model = ARCHITECTURES[name]()
    shape = (None, *tuple(model.inputs[0].shape)[1:])
    plain = ConversionSource(model, shape)
    with monkeypatch.context() as patch:
        _with_autograph(patch)
        rewritten = ConversionSource(model, shape)
        expected = (_nodes(rewritten), rewritten.tflite_float, _outputs(rewritten, model))
    assert _nodes(plain) == expected[0]
    assert plain.tflite_float == expected[1]
    for got, want in zip(_outputs(plain, model), expected[2], strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_call_that_branches_on_a_tensor_fails_as_with_autograph(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Keras keeps AutoGraph out of a layer's ``call``, so it never rescued such a model."""
    import keras
    import tensorflow as tf

    class Branching(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.mix = keras.layers.Conv2D(3, 1)

        def call(self, inputs):  # type: ignore[no-untyped-def]
            if tf.reduce_mean(inputs) > 0.5:  # a Python `if` on a tensor
                return self.mix(inputs)
            return inputs * 0.5

    model = Branching()
    model(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(tf.errors.OperatorNotAllowedInGraphError) as plain:
        ConversionSource(model, (None, 8, 8, 3)).frozen_function  # noqa: B018 - traces
    with monkeypatch.context() as patch:
        _with_autograph(patch)
        with pytest.raises(tf.errors.OperatorNotAllowedInGraphError) as rewritten:
            ConversionSource(model, (None, 8, 8, 3)).frozen_function  # noqa: B018
    assert "as a Python `bool` is not allowed" in str(plain.value)
    assert "as a Python `bool` is not allowed" in str(rewritten.value)
