"""What attribution costs against one conversion, on a 100-layer MobileNetV2-style model.

Usage: ``python benchmarks/attribution_cost.py``. In one process, on the same images (32
calibration, 32 evaluation at 224×224): converts the model to ``tflite-int8`` and ``onnx-int8``
and runs each artifact (what one target costs), then attributes each target's drift to the
Keras layers as ``qcheck check`` does for a failing target. The first attribution traces the
simulation once for the model and scheme; the second target reuses it. Prints the seconds and
the ratios; writes ``benchmarks/results/attribution.json``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    from benchmarks import reference_model
    from benchmarks.run import write_images
    from qcheck.quiet import import_tensorflow

    import_tensorflow()
    import converters
    from qcheck.analyze import attribute, gather_evidence
    from qcheck.cache import Cache
    from qcheck.runners import runner_for
    from qcheck.session import Session

    work = Path(tempfile.mkdtemp(prefix="qcheck-attribution-"))
    model_path = work / "deep.keras"
    layers = reference_model.save(model_path, blocks=reference_model.DEEP_BLOCKS)
    calib = write_images(work / "calib", 0, 32, seed=1)
    evaluation = write_images(work / "eval", 1, 32, seed=2)
    session = Session.open(str(model_path), str(calib), str(evaluation), "0:1", work,
                           Cache(enabled=False))
    results: dict[str, dict[str, float]] = {}
    try:
        model = session.handle.model
        source = converters.ConversionSource(model, session.handle.info.input_shape)
        samples = session.images.feed("calibration").samples
        session.references.get("evaluation")
        evidence = gather_evidence(session)
        for name in ("tflite-int8", "onnx-int8"):
            spec = converters.TARGETS[name]
            started = time.perf_counter()
            content = converters.convert(spec, source, samples)
            converted = time.perf_counter() - started
            with runner_for(spec.format, content) as runner:
                outputs = runner.infer_all(session.images.feed("evaluation"))
            ran = time.perf_counter() - started
            started = time.perf_counter()
            analysis = attribute(evidence, session, spec, outputs, artifact=content)
            attributed = time.perf_counter() - started
            results[name] = {"convert_seconds": round(converted, 2),
                             "convert_and_run_seconds": round(ran, 2),
                             "attribution_seconds": round(attributed, 2),
                             "attribution_vs_convert_and_run": round(attributed / ran, 2),
                             "top_attributions": [f"{a.layer} {a.cause.value} {a.delta_e:.2f}"
                                                    for a in analysis.attribution[:3]]}
            print(name, results[name], flush=True)
    finally:
        session.close()
    target = HERE / "results" / "attribution.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps({"layers": layers, "targets": results}, indent=2) + "\n")
    print(f"{layers} layers; written to {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
