"""The bare library calls a careful engineer would write for the four default targets.

Usage: ``python benchmarks/bare.py MODEL CALIB_DIR EVAL_DIR``. Converts to TFLite fp16 and int8
(``from_keras_model``), ONNX via tf2onnx, float16 via onnxconverter-common and int8 via ONNX
Runtime's ``quantize_static``; runs the float model and each artifact on the evaluation images.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _images(folder: str, size: int) -> np.ndarray:
    from PIL import Image

    arrays = []
    for path in sorted(Path(folder).iterdir()):
        with Image.open(path) as img:
            arrays.append(np.asarray(img.convert("RGB").resize((size, size)), np.float32) / 255)
    return np.stack(arrays)


def _run_tflite(content: bytes, images: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for start in range(0, len(images), 16):
        batch = images[start : start + 16]
        interpreter.resize_tensor_input(inp["index"], list(batch.shape))
        interpreter.allocate_tensors()
        data = batch
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            data = np.clip(np.round(batch / scale + zero), 0, 255).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], data)
        interpreter.invoke()
        result = interpreter.get_tensor(out["index"])
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            result = (result.astype(np.float32) - zero) * scale
        results.append(result)
    return np.concatenate(results)


def _erfc(graph, node, name, args):  # type: ignore[no-untyped-def]
    """Exact GELU's Erfc, which tf2onnx cannot export: 1 - Erf (as qcheck does)."""
    from tf2onnx import utils

    node.type = "Erf"
    one = graph.make_const(utils.make_name("one"), np.array(1, np.float32))
    graph.insert_new_node_on_output("Sub", node.output[0], inputs=[one.output[0], node.output[0]],
                                    name=utils.make_name("erfc"))


def main(model_path: str, calib_dir: str, eval_dir: str) -> None:
    import keras
    import onnx
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx
    from onnxconverter_common import float16
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    started = time.perf_counter()
    model = keras.saving.load_model(model_path, compile=False)
    size = int(model.inputs[0].shape[1])
    calib, evaluation = _images(calib_dir, size), _images(eval_dir, size)
    model.predict(evaluation, batch_size=16, verbose=0)

    def representative():
        for image in calib:
            yield [image[None]]

    fp16 = tf.lite.TFLiteConverter.from_keras_model(model)
    fp16.optimizations = [tf.lite.Optimize.DEFAULT]
    fp16.target_spec.supported_types = [tf.float16]
    _run_tflite(fp16.convert(), evaluation)

    int8 = tf.lite.TFLiteConverter.from_keras_model(model)
    int8.optimizations = [tf.lite.Optimize.DEFAULT]
    int8.representative_dataset = representative
    int8.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    int8.inference_input_type = tf.uint8
    int8.inference_output_type = tf.uint8
    _run_tflite(int8.convert(), evaluation)

    spec = tf.TensorSpec((None, size, size, 3), tf.float32, name="image")
    function = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    proto, _ = tf2onnx.convert.from_function(function, input_signature=[spec], opset=17,
                                             custom_op_handlers={"Erfc": (_erfc, [])})
    with tempfile.TemporaryDirectory() as tmp:
        float_path = Path(tmp) / "float.onnx"
        onnx.save(proto, float_path)
        half = float16.convert_float_to_float16(proto, keep_io_types=True)
        session = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"])
        session.run(None, {"image": evaluation})

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.items = iter([{"image": image[None]} for image in calib])

            def get_next(self):  # type: ignore[no-untyped-def]
                return next(self.items, None)

        quantize_static(str(float_path), str(Path(tmp) / "int8.onnx"), Reader(),
                        quant_format=QuantFormat.QDQ, per_channel=True)
        session = ort.InferenceSession(str(Path(tmp) / "int8.onnx"),
                                       providers=["CPUExecutionProvider"])
        session.run(None, {"image": evaluation})
    print(f"bare calls: {time.perf_counter() - started:.2f} s after imports", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:4])
