"""The kernel table: which layers can take 16-bit activations is known before converting, from
ai-edge-quantizer itself, so a plan never spends a conversion on an int16 choice it cannot
build (a LayerNormalization's NEG and SQUARED_DIFFERENCE, a pixel shuffle's DEPTH_TO_SPACE)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import converters
import qcheck
from qcheck.cache import Cache
from qcheck.load import ModelFeed
from qcheck.load.images import ImageSet
from qcheck.planner import Choice
from qcheck.planner.kernels import kernel_table
from qcheck.types import InputRange
from tests import tiny_models


def test_the_table_is_learned_from_the_quantizer_and_cached(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    table = kernel_table(cache)
    assert table is not None and table.tool.startswith("ai-edge-quantizer ")
    assert {"CONV_2D", "ADD", "MUL"} <= table.int16_ops
    assert not {"SQUARE", "NEG", "SQUARED_DIFFERENCE", "DEPTH_TO_SPACE"} & table.int16_ops
    assert kernel_table(cache) == table  # from the cache the second time
    assert list(tmp_path.rglob("kernels.json"))


def _normalized_upsampler() -> Any:
    """Super-resolution with a LayerNormalization and a pixel shuffle (tf.nn.depth_to_space
    in a custom layer), 16² → 32², trained for seconds."""
    import keras
    import tensorflow as tf

    class DepthToSpace(keras.layers.Layer):
        """keras-io ESPCN's pixel shuffle: ``tf.nn.depth_to_space`` in a layer."""

        def call(self, inputs: Any) -> Any:
            return tf.nn.depth_to_space(inputs, 2)

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="features")(inputs)
    x = keras.layers.LayerNormalization(name="norm")(x)
    x = keras.layers.Conv2D(12, 3, padding="same", name="to_subpixels")(x)
    model = keras.Model(inputs, DepthToSpace(name="shuffle")(x))
    large = tiny_models.training_images(96, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    model.fit(large[:, ::2, ::2], large, epochs=4, batch_size=16, verbose=0)
    return model


@pytest.fixture(scope="module")
def upsampler() -> Any:
    from qcheck.quiet import import_tensorflow

    import_tensorflow()
    return _normalized_upsampler()


def _output_dtypes(artifact: bytes) -> dict[str, set[str]]:
    """Per TFLite op name, the dtypes its outputs have in ``artifact``."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=artifact)
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    found: dict[str, set[str]] = {}
    for op in interpreter._get_ops_details():
        found.setdefault(op["op_name"], set()).update(
            tensors[i]["dtype"].__name__ for i in op["outputs"])
    return found


def test_a_plan_tries_no_int16_choice_the_table_rules_out(upsampler: Any) -> None:
    images = tiny_models.training_images(40, seed=4)[:, ::2, ::2]
    strict = qcheck.Thresholds(max_delta_e=0.05, max_delta_e_p95=0.1)
    outcome = qcheck.plan(upsampler, "tflite-int8", calib=images[:24], eval=images[24:],
                          thresholds=strict, budget_seconds=60)
    plan = outcome.plan
    assert plan is not None
    assert plan.int16_ruled_out["norm"] == ["NEG", "SQUARED_DIFFERENCE"]
    assert plan.int16_ruled_out["shuffle"] == ["DEPTH_TO_SPACE"]
    tried = [p.recipe for p in plan.points]
    assert any(r.choice("norm") is Choice.FLOAT for r in tried)  # float stays open
    assert not [r for r in tried if Choice.INT16 in (r.choice("norm"), r.choice("shuffle"))]
    assert not [p for p in plan.points if p.error]
    # What the table predicts, on the artifact ai-edge-quantizer builds when asked anyway:
    # the ruled-out ops are left outside 16 bits (float islands and int8 between 16-bit ops).
    source = converters.ConversionSource(upsampler, (None, 16, 16, 3))
    feed = ModelFeed(ImageSet(tuple(map(str, range(24))), images[:24], source="test"),
                     InputRange(0, 1))
    asked = converters.convert(converters.TARGETS["tflite-int8"], source, feed.samples,
                               options=converters.ConversionOptions(
                                   int16_layers=("norm", "shuffle"), planned=True))
    dtypes = _output_dtypes(asked)
    for op in ("NEG", "SQUARED_DIFFERENCE", "DEPTH_TO_SPACE"):
        assert "int16" not in dtypes[op], (op, dtypes[op])
    assert "int16" in dtypes["RSQRT"]  # the layer's other ops did take 16 bits
