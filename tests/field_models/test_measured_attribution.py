"""Attribution measured on real artifacts, on the architectures people ship: for the top
measured layer, the figures qcheck reports agree with artifacts built here independently
(TensorFlow's selective quantization / ONNX Runtime's ``nodes_to_exclude``, run on LiteRT and
ONNX Runtime, scored with scikit-image's CIEDE2000), and the relief it claims is what keeping
that layer float buys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from skimage import color

import converters
import qcheck
from qcheck.load import ModelFeed
from qcheck.load.images import ImageSet
from qcheck.outputs import OutputKind
from qcheck.results import ranked_by_relief
from qcheck.runners import runner_for
from qcheck.types import InputRange
from tests import tiny_models
from tests.field_models import architectures, generators


def _case(build: Callable[[], Any], input_range: str, target: str, *, slow: bool = True
          ) -> Any:
    marks = [pytest.mark.slow] if slow else []
    return pytest.param(build, input_range, target, marks=marks,
                        id=f"{build.__name__}-{target}")


CASES = [
    _case(generators.instance_norm_generator, "-1:1", "tflite-int8", slow=False),
    _case(generators.instance_norm_generator, "-1:1", "onnx-int8"),
    _case(generators.nafnet_denoiser, "0:1", "tflite-int8"),
    _case(generators.nafnet_denoiser, "0:1", "onnx-int8", slow=False),
    # 20 s: in make test-all with its ONNX twin, so .ci/run stays under its 15 minutes.
    _case(architectures.vit_classifier, "0:1", "tflite-int8"),
    _case(architectures.vit_classifier, "0:1", "onnx-int8"),
    _case(architectures.unet_sigmoid, "-1:1", "tflite-int8"),
    _case(architectures.unet_sigmoid, "-1:1", "onnx-int8", slow=False),
    _case(architectures.zero_dce, "0:1", "tflite-int8", slow=False),
    _case(architectures.zero_dce, "0:1", "onnx-int8"),
    _case(architectures.mirnet_block, "0:1", "tflite-int8"),
    _case(architectures.mirnet_block, "0:1", "onnx-int8", slow=False),
]


def drift(reference: np.ndarray, produced: np.ndarray, output_range: InputRange | None
          ) -> float:
    """Mean CIEDE2000 for image outputs (read in ``output_range``), else RMS error over the
    float output's RMS (qcheck's measure for classifiers and tensors)."""
    if output_range is None:
        ref = reference.reshape(len(reference), -1).astype(np.float64)
        error = produced.reshape(len(produced), -1) - ref
        return float(np.mean(np.sqrt(np.mean(error**2, axis=1))
                             / np.sqrt(np.mean(ref**2))))
    unit = [np.clip((np.asarray(v, np.float64) - output_range.low) / output_range.span, 0, 1)
            for v in (reference, produced)]
    lab = [color.rgb2lab(v) for v in unit]
    return float(np.mean(color.deltaE_ciede2000(lab[0], lab[1])))


def independent_build(model: Any, target: str, keep_float: tuple[str, ...],
                      calibration: np.ndarray, input_range: InputRange,
                      inputs: np.ndarray) -> np.ndarray:
    """The artifact built here from the model with ``keep_float`` float, run on ``inputs``."""
    spec = converters.TARGETS[target]
    source = converters.ConversionSource(model, (None, *model.input_shape[1:]))
    images = ImageSet(tuple(map(str, range(len(calibration)))), calibration, source="test")
    samples = ModelFeed(images, input_range).samples
    options = converters.ConversionOptions(keep_float=keep_float) if keep_float else None
    artifact = converters.convert(spec, source, samples, options=options)
    with runner_for(spec.format, artifact) as runner:
        return np.asarray(runner.infer(inputs))


def only(layer: str, layers: tuple[str, ...]) -> tuple[str, ...]:
    """Every layer but ``layer`` (and the models around it, and its own inner layers)."""
    return tuple(name for name in layers if name != layer and not layer.startswith(name + "/")
                 and not name.startswith(layer + "/"))


@pytest.mark.parametrize(("build", "input_range", "target"), CASES)
def test_the_top_measured_layer_agrees_with_an_independent_build(
        build: Callable[[], Any], input_range: str, target: str) -> None:
    model = build()
    calibration = tiny_models.training_images(24, seed=1)
    evaluation = tiny_models.training_images(6, seed=2)
    report = qcheck.check(model, calibration, evaluation, [target], input_range=input_range,
                          analyze_all=True, readiness=False, fix_verification=False)
    result = report.target(target)
    assert result.error is None, result.error
    analysis = result.analysis or {}
    measured = [a for a in ranked_by_relief(result.attribution) if a.relief is not None]
    assert measured, f"no layer of {build.__name__} was measured: {analysis}"
    reliefs = [row["relief"] for row in analysis["ranking"]]
    assert reliefs == sorted(reliefs, reverse=True), "ranked by what was measured"
    top = measured[0]
    assert top.layer == analysis["ranking"][0]["layer"]
    assert top.measured is not None
    rows = list(analysis["image_indices"])
    value_range = InputRange.parse(input_range)
    inputs = (evaluation[rows] * value_range.span + value_range.low).astype(np.float32)
    reference = np.asarray(model(inputs, training=False))
    assert report.output is not None
    output_range = report.output.range if report.output.kind is OutputKind.IMAGE else None
    assert (output_range is None) == (top.measure != "delta_e")
    rounded = independent_build(model, target, (), calibration, value_range, inputs)
    target_drift = drift(reference, rounded, output_range)
    assert analysis["target_on_attribution_images"] == pytest.approx(target_drift, rel=0.01,
                                                                     abs=1e-4)
    # Only the top layer quantized: what qcheck reports as ``measured``.
    alone = independent_build(model, target, only(top.layer, report.model.layers),
                              calibration, value_range, inputs)
    assert drift(reference, alone, output_range) == pytest.approx(top.measured, rel=0.02,
                                                                   abs=1e-3)
    # Kept float (the keep_float fix): it lowers the drift by what qcheck claims, less 10 %.
    kept = drift(reference, independent_build(model, target, (top.layer,), calibration,
                                              value_range, inputs), output_range)
    assert target_drift - kept >= top.relief - 0.1 * abs(top.relief) - 1e-4, (
        top.layer, target_drift, kept, top.relief)
