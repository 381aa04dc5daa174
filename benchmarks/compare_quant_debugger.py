"""Compare qcheck's attribution with TFLite's QuantizationDebugger on the sample models.

``python benchmarks/compare_quant_debugger.py``: for each sample model and int8 target, prints
the debugger's top tensors by rmse/scale (its recommended ranking, under TFLite tensor names)
next to qcheck's top attributions (ΔE of the output, under Keras layer names).
"""

from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CASES = (("per_tensor_trap", "tflite-int8-per-tensor"), ("pool_after_residual", "tflite-int8"),
         ("depthwise_rgb", "tflite-int8"), ("healthy", "tflite-int8"))


def debugger_ranking(model_path: Path, per_tensor: bool, images: np.ndarray
                     ) -> list[tuple[str, float]]:
    import tensorflow as tf

    from qcheck.load import load_model
    from qcheck.quiet import native_quiet

    model = load_model(model_path).model

    def dataset():  # type: ignore[no-untyped-def]
        for image in images:
            yield [image[None].astype(np.float32)]

    with native_quiet():
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = dataset
        if per_tensor:
            converter._experimental_disable_per_channel = True
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter,
                                                             debug_dataset=dataset)
        debugger.run()
    buffer = io.StringIO()
    debugger.layer_statistics_dump(buffer)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    ranked = []
    for row in rows:
        scale = float(row["scale"])
        if scale > 0:
            ranked.append((row["tensor_name"], float(np.sqrt(float(row["mean_squared_error"])))
                           / scale))
    return sorted(ranked, key=lambda item: -item[1])


def main() -> int:
    import qcheck
    from qcheck.load import bundled_images
    from sample_models.catalog import SAMPLES

    for name, target in CASES:
        sample = next(s for s in SAMPLES if s.name == name)
        calib, _ = bundled_images((64, 64))
        ranking = debugger_ranking(sample.path, target.endswith("per-tensor"), calib.pixels)
        report = qcheck.check(sample.path, targets=[target], analyze_all=True,
                              fix_verification=False)
        result = report.target(target)
        print(f"\n== {name} · {target} (real ΔE {result.metrics.delta_e_mean:.2f})")
        print("  QuantizationDebugger, top rmse/scale:")
        for tensor, value in ranking[:4]:
            print(f"    {value:6.3f}  {tensor[:90]}")
        print("  qcheck attribution, top ΔE:")
        for item in result.attribution[:4]:
            print(f"    {item.delta_e:6.3f}  {item.layer} ({item.cause.value})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
