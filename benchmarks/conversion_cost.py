"""``onnx-fp16`` against ``tflite-fp16``: the seconds each conversion costs qcheck on one model.

Usage: ``python benchmarks/conversion_cost.py MODEL.keras``. Both start from the frozen graph
qcheck builds once per model (its cost is shared, so it is timed on its own): ``tflite-fp16``
is TensorFlow's converter, ``onnx-fp16`` is the tf2onnx export plus onnxconverter-common's
float16 pass. Importing tf2onnx and onnxconverter-common is a once-per-process cost, as
importing TensorFlow's converter is, so it is timed on its own too. Each conversion is timed
``REPEATS`` times, each from a fresh frozen graph, and the fastest counts. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


REPEATS = 3


def main(model_path: str) -> None:
    from qcheck.quiet import import_tensorflow

    import_tensorflow()
    import keras

    import converters

    model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    source = converters.ConversionSource(model, tuple(model.inputs[0].shape))
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    import onnxconverter_common.float16  # noqa: F401
    import tf2onnx  # noqa: F401

    seconds["onnx_imports"] = time.perf_counter() - started
    started = time.perf_counter()
    source.frozen_function  # noqa: B018 -- built once, shared by every target
    seconds["frozen_graph"] = time.perf_counter() - started
    # The fastest of a few tries, as timeit reports: what the machine did besides is noise.
    for attempt in range(REPEATS):
        if attempt:
            source = converters.ConversionSource(model, tuple(model.inputs[0].shape))
            source.frozen_function  # noqa: B018 -- not what is timed
        for name in ("tflite-fp16", "onnx-fp16"):
            started = time.perf_counter()
            converters.convert(converters.TARGETS[name], source, None)
            took = time.perf_counter() - started
            seconds[name] = min(seconds.get(name, took), took)
    print(json.dumps({name: round(value, 3) for name, value in seconds.items()}))


if __name__ == "__main__":
    main(sys.argv[1])
