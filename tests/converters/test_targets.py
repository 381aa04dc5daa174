"""Every target converts with the real converter and runs on the real runtime."""

from __future__ import annotations

import numpy as np
import pytest

import converters
from qcheck.load import ModelFeed, bundled_images
from qcheck.runners import KerasRunner, LiteRTRunner, runner_for
from qcheck.runners.litert import dequantize, quantize
from qcheck.types import Format, InputRange, Precision
from tests import tiny_models

# How far each precision may move a [0, 1] output of the tiny enhancer (absolute).
TOLERANCE = {
    Precision.FP32: 1e-4,
    Precision.FP16: 2e-2,
    Precision.DYNAMIC_INT8: 5e-2,
    Precision.INT16X8: 5e-2,
    Precision.INT8: 0.15,
}


@pytest.fixture(scope="module")
def setup(enhancer):  # type: ignore[no-untyped-def]
    calib, evaluation = bundled_images((32, 32))
    source = converters.ConversionSource(enhancer, (None, 32, 32, 3))
    feeds = ModelFeed(calib, InputRange(0, 1)), ModelFeed(evaluation, InputRange(0, 1))
    with KerasRunner(enhancer) as runner:
        reference = runner.infer_all(feeds[1])
    return source, feeds, reference


@pytest.mark.parametrize("name", list(converters.TARGETS))
def test_target_converts_and_runs(name: str, setup) -> None:  # type: ignore[no-untyped-def]
    source, (calib_feed, eval_feed), reference = setup
    spec = converters.TARGETS[name]
    content = converters.convert(spec, source, calib_feed.samples)
    magic_ok = content[4:8] == b"TFL3" if spec.format is Format.TFLITE else content[:2] != b""
    assert magic_ok
    with runner_for(spec.format, content) as runner:
        outputs = runner.infer_all(eval_feed)
    assert outputs.shape == reference.shape
    assert outputs.dtype == np.float32
    error = float(np.max(np.abs(outputs - reference)))
    assert error <= TOLERANCE[spec.precision], f"{name}: max error {error}"
    if spec.precision is Precision.INT8:
        assert error > 0, "an int8 artifact cannot be bit-exact with float"


def test_per_tensor_and_per_channel_artifacts_differ(setup) -> None:  # type: ignore[no-untyped-def]
    source, (calib_feed, _), _ = setup
    per_channel = converters.convert(converters.TARGETS["tflite-int8"], source, calib_feed.samples)
    per_tensor = converters.convert(converters.TARGETS["tflite-int8-per-tensor"], source,
                                    calib_feed.samples)
    assert per_channel != per_tensor


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_quantize_dequantize_round_trips_every_code(dtype) -> None:  # type: ignore[no-untyped-def]
    info = np.iinfo(dtype)
    codes = np.arange(info.min, info.max + 1, dtype=dtype)
    scale, zero_point = 0.0173, 3
    assert np.array_equal(quantize(dequantize(codes, scale, zero_point), scale, zero_point,
                                   np.dtype(dtype)), codes)


@pytest.mark.parametrize(("value_range", "expected_dtype"),
                         [(InputRange(0, 1), np.uint8), (InputRange(-1, 1), np.int8)])
def test_int8_artifact_io_uses_the_artifacts_own_scale(setup, value_range, expected_dtype  # type: ignore[no-untyped-def]
                                                       ) -> None:
    source, (calib_feed, eval_feed), _ = setup
    feed = ModelFeed(calib_feed.images, value_range)
    content = converters.convert(converters.TARGETS["tflite-int8"], source, feed.samples,
                                 signed_io=value_range.low < 0)
    runner = LiteRTRunner(content)
    with runner:
        details = runner.input_details
        assert details["dtype"] == expected_dtype
        scale, zero_point = details["quantization"]
        batch = ModelFeed(eval_feed.images, value_range).to_model_range(eval_feed.images.pixels[:2])
        # 8-bit pixels survive the trip through the artifact's input quantization exactly.
        pixels8 = np.round(batch * 0 + eval_feed.images.pixels[:2] * 255) / 255
        model_in = ModelFeed(eval_feed.images, value_range).to_model_range(pixels8)
        codes = quantize(model_in, scale, zero_point, np.dtype(details["dtype"]))
        assert np.max(np.abs(dequantize(codes, scale, zero_point) - model_in)) <= scale / 2 + 1e-6
        assert runner.infer(batch).shape == (2, 32, 32, 3)


def test_exact_gelu_exports_to_onnx() -> None:
    """Keras' default ``gelu`` (ConvNeXt's) traces to TensorFlow's ``Erfc``, which tf2onnx
    cannot map by itself: the ONNX export must still run and match the float model."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(16, activation="gelu", name="mlp")(inputs)
    model = keras.Model(inputs, outputs)
    source = converters.ConversionSource(model, (None, 8, 8, 3))
    samples = np.random.default_rng(0).normal(0, 3, (2, 8, 8, 3)).astype(np.float32)
    with runner_for(Format.ONNX, source.onnx_float) as runner:
        result = runner.infer(samples)
    assert np.max(np.abs(result - model(samples).numpy())) < 1e-5


def test_onnx_export_without_per_pass_writes_is_tf2onnxs_graph(enhancer, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """qcheck skips tf2onnx's protobuf writes between optimizer passes (a copy of the weights
    per pass) and the op counts it takes only to log them: the export must be the graph
    tf2onnx makes on its own, and tf2onnx must be left as it was found."""
    import collections
    import contextlib

    import onnx
    from tf2onnx import optimizer
    from tf2onnx.graph import Graph, Node

    import converters.source

    originals = (Graph.update_proto, Graph.dump_node_statistics, Node.update_proto,
                 optimizer.optimize_graph)
    lean = onnx.load_from_string(converters.ConversionSource(enhancer, (None, 32, 32, 3))
                                 .onnx_float)
    assert (Graph.update_proto, Graph.dump_node_statistics, Node.update_proto,
            optimizer.optimize_graph) == originals
    monkeypatch.setattr(converters.source, "_protos_written_once", contextlib.nullcontext)
    plain = onnx.load_from_string(converters.ConversionSource(enhancer, (None, 32, 32, 3))
                                  .onnx_float)

    def ops(model):  # type: ignore[no-untyped-def]
        return collections.Counter((n.op_type, len(n.attribute)) for n in model.graph.node)

    def weights(model):  # type: ignore[no-untyped-def]
        return sorted(onnx.numpy_helper.to_array(i).tobytes() for i in model.graph.initializer)

    assert ops(lean) == ops(plain) and weights(lean) == weights(plain)
    images = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    with runner_for(Format.ONNX, lean.SerializeToString()) as a, \
            runner_for(Format.ONNX, plain.SerializeToString()) as b:
        assert np.array_equal(a.infer(images), b.infer(images))


def test_onnx_export_scans_only_transposes_and_makes_tf2onnxs_bytes(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """qcheck's scan of the transpose optimizer skips nodes that are not transposes; the
    rewrites, so the exported bytes, must be tf2onnx's own."""
    import contextlib

    from tf2onnx.optimizer import transpose_optimizer

    import converters.source

    rewrites = []
    handle = transpose_optimizer.TransposeOptimizer._handle_nhwc_tranpose

    def counted(optimizer, node):  # type: ignore[no-untyped-def]
        acted = handle(optimizer, node)
        rewrites.append(acted)
        return acted

    monkeypatch.setattr(transpose_optimizer.TransposeOptimizer, "_handle_nhwc_tranpose", counted)
    model = tiny_models.build_mixing_block()
    scan = transpose_optimizer.TransposeOptimizer._optimize_at_current_graph_level
    lean = converters.ConversionSource(model, (None, 32, 32, 3)).onnx_float
    assert transpose_optimizer.TransposeOptimizer._optimize_at_current_graph_level is scan
    assert sum(rewrites) >= 5, "the transpose optimizer must have had work to do"
    monkeypatch.setattr(converters.source, "_transposes_scanned_alone", contextlib.nullcontext)
    assert converters.ConversionSource(model, (None, 32, 32, 3)).onnx_float == lean


def test_tflite_targets_skip_the_converters_refreeze_and_match_fresh_converters(  # type: ignore[no-untyped-def]
        setup, tmp_path, monkeypatch) -> None:
    """TFLite's converter freezes its function again on every ``convert()``; qcheck hands it
    the already frozen graph instead. Every artifact must still be the bytes a fresh converter
    makes, for a Keras model and for a graph handed over without its Keras code."""
    import tensorflow as tf
    from tensorflow.lite.python import lite

    _, (calib_feed, _), _ = setup
    source = converters.ConversionSource(setup[0].model, (None, 32, 32, 3))
    source.save_graph(tmp_path / "model.pb")
    handed_over = converters.ConversionSource.from_graph(tmp_path / "model.pb")
    freezes = []
    real_freeze = lite.TFLiteFrozenGraphConverterV2._freeze_concrete_function

    def counted(self):  # type: ignore[no-untyped-def]
        freezes.append(self)
        return real_freeze(self)

    monkeypatch.setattr(lite.TFLiteFrozenGraphConverterV2, "_freeze_concrete_function", counted)
    cases = [(source, "tflite-fp16"), (source, "tflite-dynamic-int8"), (source, "tflite-int8"),
             (handed_over, "tflite-fp16"), (handed_over, "tflite-int8")]
    ours = [converters.convert(converters.TARGETS[name], origin, calib_feed.samples)
            for origin, name in cases]
    assert not freezes

    def fresh(origin: converters.ConversionSource, name: str) -> bytes:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([origin.frozen_function])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if name == "tflite-fp16":
            converter.target_spec.supported_types = [tf.float16]
        if name == "tflite-int8":
            converter.representative_dataset = lambda: ([s] for s in calib_feed.samples())
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.uint8
        return bytes(converter.convert())

    for (origin, name), content in zip(cases, ours, strict=True):
        assert content == fresh(origin, name), name
    assert len(freezes) == len(cases)
    assert source.frozen_function.inputs[0].shape.as_list() == [None, 32, 32, 3]


def test_onnx_export_without_tf2onnxs_dropped_freeze_is_the_same_model(enhancer) -> None:  # type: ignore[no-untyped-def]
    """tf2onnx's ``from_graph_def`` freezes the graph in a session and drops the result;
    qcheck skips that step. The ONNX model must be tf2onnx's own: the same ops in the same
    order with the same attributes, the same weights and inputs, bit-identical outputs. (Its
    inserted nodes' names carry a counter, so two exports in one process never match byte for
    byte, tf2onnx's own included.)"""
    import onnx
    import tf2onnx

    from converters.source import _erfc_as_one_minus_erf, _from_frozen_graph_def

    frozen = converters.ConversionSource(enhancer, (None, 32, 32, 3)).frozen_function
    graph_def = frozen.graph.as_graph_def()
    names = {"input_names": [frozen.inputs[0].name], "output_names": [frozen.outputs[0].name]}
    options = {"opset": 17, "tensors_to_rename": {frozen.inputs[0].name: "image"},
               "custom_op_handlers": {"Erfc": (_erfc_as_one_minus_erf, [])}}
    ours, _ = _from_frozen_graph_def(graph_def, **names, **options)
    theirs, _ = tf2onnx.convert.from_graph_def(graph_def, **names, **options)

    def ops(model):  # type: ignore[no-untyped-def]
        return [(n.op_type, [a.SerializeToString() for a in n.attribute]) for n in model.graph.node]

    def weights(model):  # type: ignore[no-untyped-def]
        return sorted(onnx.numpy_helper.to_array(i).tobytes() for i in model.graph.initializer)

    assert ops(ours) == ops(theirs) and weights(ours) == weights(theirs)
    def ends(model):  # type: ignore[no-untyped-def]
        return [(v.name, v.type.tensor_type.elem_type, [d.dim_value for d in v.type.tensor_type
                                                          .shape.dim])
                for v in (*model.graph.input, *model.graph.output)]

    assert ends(ours) == ends(theirs) and ours.opset_import == theirs.opset_import
    images = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    with runner_for(Format.ONNX, ours.SerializeToString()) as a, \
            runner_for(Format.ONNX, theirs.SerializeToString()) as b:
        assert np.array_equal(a.infer(images), b.infer(images))
