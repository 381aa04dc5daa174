"""Per-layer figures measured on real artifacts: each one agrees with an independent build of
the same one-layer-float artifact, and attribution is ranked by what was measured."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import color

import converters
import qcheck
from qcheck.load import ModelFeed
from qcheck.load.images import ImageSet
from qcheck.runners import runner_for
from qcheck.types import InputRange
from tests import tiny_models
from tests.analyze.test_attribution import _scale_channel_and_consumer


def _delta_e(reference: np.ndarray, produced: np.ndarray) -> float:
    lab = [color.rgb2lab(np.clip(v, 0, 1).astype(np.float64)) for v in (reference, produced)]
    return float(np.mean(color.deltaE_ciede2000(lab[0], lab[1])))


@pytest.mark.parametrize("target", ["tflite-int8", "onnx-int8"])
def test_relief_and_measured_agree_with_an_independent_build(enhancer, target: str) -> None:  # type: ignore[no-untyped-def]
    planted = _scale_channel_and_consumer(enhancer, 60.0)
    calib = tiny_models.training_images(24, seed=1)
    evaluation = tiny_models.training_images(6, seed=2)
    report = qcheck.check(planted, calib, evaluation, [target], analyze_all=True,
                          readiness=False, fix_verification=False)
    result = report.target(target)
    analysis = result.analysis or {}
    top = result.attribution[0]
    assert top.relief is not None and top.measured is not None
    assert analysis["confirmed_layers"] >= 1
    assert top.layer == "conv_a"  # the planted outlier relieves the most
    reliefs = [a.relief for a in result.attribution if a.relief is not None]
    assert reliefs == sorted(reliefs, reverse=True)  # ranked by what was measured
    images = analysis["image_indices"]
    spec = converters.TARGETS[target]
    source = converters.ConversionSource(planted, (None, tiny_models.SIZE, tiny_models.SIZE, 3))
    samples = ModelFeed(ImageSet(tuple(map(str, range(len(calib)))), calib, source="test"),
                        InputRange(0, 1)).samples
    reference = np.asarray(planted(evaluation[images]))
    for keep_float, claimed in (
            ((top.layer,), analysis["target_on_attribution_images"] - top.relief),
            (tuple(n for n in report.model.layers if n != top.layer), top.measured)):
        artifact = converters.convert(spec, source, samples,
                                      options=converters.ConversionOptions(keep_float=keep_float))
        with runner_for(spec.format, artifact) as runner:
            produced = runner.infer(evaluation[images])
        assert _delta_e(reference, produced) == pytest.approx(claimed, rel=0.02, abs=0.01)
