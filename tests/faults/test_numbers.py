"""Numbers that mean what they say: PSNR is monotone, artifact rules agree with the reported
metrics whatever the image size or chunking, baselines use per-metric tolerances, a fix's
clipping is measured against its own artifact."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import converters
from qcheck.compare.artifacts import artifact_stats
from qcheck.compare.color import compare_colour
from qcheck.compare.metrics import compare_outputs
from qcheck.compare.pixels import colour_pixels
from qcheck.outputs import OutputKind, OutputSpec
from qcheck.results import Metrics, TargetResult
from qcheck.types import ArtifactKind, InputRange

UNIT = InputRange.parse("0:1")


def test_psnr_never_rises_as_the_error_grows() -> None:
    reference = np.random.default_rng(0).uniform(0.2, 0.8, (2, 16, 16, 3))
    values = [Metrics(psnr_db=compare_colour(reference, reference + delta).psnr_db
                      ).to_dict()["psnr_db"] for delta in (0.0, 1e-7, 1e-6, 1e-4, 1e-2)]
    assert values[0] == 100.0  # a perfect match, as reported
    assert all(a >= b for a, b in itertools.pairwise(values)), values
    assert max(values) <= 100.0


@pytest.mark.parametrize("chunk", [16, 3])
def test_tint_agrees_with_the_reported_bias_near_its_threshold(chunk: int) -> None:
    """A true 1.505-level cast over many pixels is a tint (≥ 1.5), as the reported bias says,
    however the images are chunked."""
    rng = np.random.default_rng(1)
    reference = rng.uniform(0.2, 0.7, (16, 512, 512, 3)).astype(np.float32)
    candidate = reference.copy()
    candidate[..., 0] += np.float32(1.505 / 255)
    result = compare_outputs(reference, candidate, _image(UNIT), clipped_fraction=0.0, chunk=chunk)
    assert result.metrics.channel_bias is not None
    assert result.metrics.channel_bias["r"] == pytest.approx(1.505, abs=1e-4)
    assert ArtifactKind.TINT in result.artifacts_seen


def _edge_image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.full((1, 48, 48, 3), 0.3, np.float32)
    image[:, :, 24:] = rng.uniform(0.6, 0.9, 3)
    return image


def test_fringing_measures_each_image_on_its_own() -> None:
    """The edge statistics of a stack are the sums of its images' own: neither a neighbour in
    the stack nor the chunk an image falls in changes what counts as its edges."""
    images = [_edge_image(seed) for seed in range(3)] + [np.full((1, 48, 48, 3), 0.5,
                                                                 np.float32)]
    shifted = [np.clip(image + np.float32(0.02) * (image > 0.5), 0, 1) for image in images]
    whole = artifact_stats(colour_pixels(np.concatenate(images), np.concatenate(shifted)))
    parts = [artifact_stats(colour_pixels(a, b)) for a, b in zip(images, shifted, strict=True)]
    for key, value in whole[ArtifactKind.FRINGING].items():
        assert value == pytest.approx(sum(p[ArtifactKind.FRINGING][key] for p in parts),
                                      rel=1e-5, abs=1e-6), key


def test_a_drop_in_top1_agreement_is_a_regression(tmp_path: Path) -> None:
    from qcheck.report.baseline import Tolerances, compare_baseline, save_baseline

    spec = converters.TARGETS["tflite-int8"]

    def result(agreement: float) -> TargetResult:
        return TargetResult(spec=spec, passed=True, metrics=Metrics(
            sqnr_db=30.0, max_abs_error=0.1, top1_agreement=agreement, nonfinite_fraction=0.0))

    path = tmp_path / "baseline.json"
    save_baseline(path, "0" * 64, ["a"], [result(1.0)], {})
    compared = compare_baseline(path, [result(0.86)], {}, ["a"], Tolerances())
    assert [r.metric for r in compared.regressions] == ["top1_agreement"]
    steady = compare_baseline(path, [result(0.995)], {}, ["a"], Tolerances())
    assert steady.regressions == ()


def test_a_fix_s_clipping_is_measured_against_its_own_artifact(enhancer_path: Path,
                                                               tmp_path: Path) -> None:
    """Calibrated on dull grey images only, ``tflite-int8`` clips the evaluation outputs; the
    extended-calibration fix stores a wider output range, and its ``clipped_fraction`` is the
    share outside *that* range (read from its own .tflite here)."""
    from qcheck.assess import assess
    from qcheck.cache import Cache
    from qcheck.session import Session

    grey = np.linspace(0.4, 0.6, 8, dtype=np.float32)[:, None, None, None] * np.ones(
        (8, 32, 32, 3), np.float32)
    spec = converters.TARGETS["tflite-int8"]
    session = Session.open(str(enhancer_path), grey, None, "0:1", tmp_path, Cache(enabled=False))
    try:
        base = session.job(spec)
        fix = session.job(spec, options=converters.ConversionOptions(extra_calibration=True))
        done = session.run_jobs([base, fix])
        limits = __import__("qcheck").Thresholds()
        measured = {name: assess(spec, done[job.key], session, limits).metrics.clipped_fraction
                    for name, job in (("base", base), ("fix", fix))}
        reference = np.asarray(session.references.get("evaluation"))
        expected = {name: _outside_output_range(done[job.key].content, reference)
                    for name, job in (("base", base), ("fix", fix))}
    finally:
        session.close()
    assert expected["base"] > expected["fix"]  # the fix really stores a wider range
    assert measured == pytest.approx(expected, abs=1e-9)


def _outside_output_range(content: bytes | None, values: np.ndarray) -> float:
    from ai_edge_litert.interpreter import Interpreter

    assert content is not None
    detail = Interpreter(model_content=content).get_output_details()[0]
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    low, high = (info.min - zero) * scale, (info.max - zero) * scale
    return float(np.mean((values < low) | (values > high)))


@pytest.mark.parametrize("target", ["tflite-fp16", "onnx-fp16"])
def test_float16_targets_round_what_the_simulation_rounds(enhancer, target: str) -> None:  # type: ignore[no-untyped-def]
    """Measured on this machine's runtimes, and what the simulation does: both store weights
    as float16 and compute in float32; ONNX Runtime also hands the model's output back through
    float16 (its CPU provider fuses the casts around the float32 kernels, but not the last)."""
    from qcheck.analyze.layers import layer_facts
    from qcheck.analyze.schemes import scheme_for
    from qcheck.analyze.simulate import Simulation
    from qcheck.analyze.stats import activation_stats
    from qcheck.runners import runner_for
    from tests import tiny_models

    images = tiny_models.training_images(8, seed=3)
    spec = converters.TARGETS[target]
    source = converters.ConversionSource(enhancer, (None, 32, 32, 3))
    with runner_for(spec.format, converters.convert(spec, source, None)) as runner:
        real = runner.infer(images)
    input_stats, stats = activation_stats(enhancer, [images])
    sim = Simulation(model=enhancer, facts=layer_facts(enhancer), scheme=scheme_for(spec),
                     inputs=images, reference=np.asarray(enhancer(images)), output_range=UNIT,
                     input_stats=input_stats, calib_stats=stats, output_layer="residual")
    assert np.abs(real - sim.full()).max() < 1e-5


def _image(value_range: InputRange) -> OutputSpec:
    return OutputSpec(OutputKind.IMAGE, value_range, 4, 3, "an RGB image")


def _classifier() -> OutputSpec:
    return OutputSpec(OutputKind.CLASSES, InputRange.parse("0:1"), 2, 5, "a classifier")
