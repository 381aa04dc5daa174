"""An artifact is the same bytes from export to export and from check to check.

tf2onnx numbers the nodes it adds from a process-wide counter, keeps nodes in sets ordered by
their memory addresses, and walks sets of names ordered by the string hash: left alone, the
same model gave other bytes on every export (on a ConvNeXt-size model, 919 nodes one time
and 920 the next)."""

from __future__ import annotations

from pathlib import Path

import pytest

import converters
from qcheck.cli import main
from tests import tiny_models


def test_one_graph_exported_twice_in_one_process_is_the_same_bytes() -> None:
    from qcheck.quiet import import_tensorflow

    import_tensorflow()
    model = tiny_models.build_mixing_block()
    first = converters.ConversionSource(model, (None, 32, 32, 3)).onnx_float
    assert converters.ConversionSource(model, (None, 32, 32, 3)).onnx_float == first


def test_attention_exported_twice_in_one_process_is_the_same_bytes() -> None:
    """Keras's MultiHeadAttention computes with einsum, which tf2onnx's einsum optimizer
    rewrites into nodes named after the memory addresses of its own objects
    (``einsum139916165923664_id_axes__119``)."""
    import keras

    from qcheck.quiet import import_tensorflow

    import_tensorflow()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    tokens = keras.layers.Reshape((64, 48))(keras.layers.Conv2D(48, 4, strides=4)(inputs))
    attended = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(tokens, tokens)
    outputs = keras.layers.Dense(4, activation="softmax")(
        keras.layers.GlobalAveragePooling1D()(attended))
    model = keras.Model(inputs, outputs)
    first = converters.ConversionSource(model, (None, 32, 32, 3)).onnx_float
    assert b"einsum" in first
    assert converters.ConversionSource(model, (None, 32, 32, 3)).onnx_float == first


def test_two_checks_write_the_same_artifacts(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Each check converts in worker processes of its own, each started with a hash seed of
    its own unless qcheck sets one; the four default targets."""
    from qcheck.quiet import import_tensorflow

    import_tensorflow()
    model = tmp_path / "mixing.keras"
    tiny_models.build_mixing_block().save(model)
    artifacts = []
    for run in ("a", "b"):
        out = tmp_path / run
        code = main(["check", str(model), "--out", str(out), "--no-cache", "--quiet",
                     "--no-analysis", "--no-readiness", "--input-range", "0:1"])
        capsys.readouterr()
        assert code in (0, 1)
        artifacts.append({path.name: path.read_bytes()
                          for path in sorted((out / "artifacts").iterdir())})
    assert list(artifacts[0]) == ["onnx-fp16.onnx", "onnx-int8.onnx", "tflite-fp16.tflite",
                                  "tflite-int8.tflite"]
    assert artifacts[0] == artifacts[1]


def test_exports_on_two_threads_are_each_the_bytes_of_one_alone() -> None:
    """The export patches tf2onnx's classes and resets its counter for the whole process: two
    at once must not see each other's. (Called below ``onnx_float``, whose cached property
    holds a lock of its own on Python 3.11.)"""
    from concurrent.futures import ThreadPoolExecutor

    from converters.source import _export_onnx
    from qcheck.quiet import import_tensorflow

    import_tensorflow()
    frozen = converters.ConversionSource(tiny_models.build_mixing_block(), (None, 32, 32, 3)
                                         ).frozen_function
    graph_def = frozen.graph.as_graph_def()
    inputs, outputs = [frozen.inputs[0].name], [frozen.outputs[0].name]

    def export(_: int) -> bytes:
        return _export_onnx(graph_def, inputs, outputs, {inputs[0]: "image"},
                            copy_per_optimizer=False)

    alone = export(0)
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(export, range(4)))
    assert together == [alone] * 4
