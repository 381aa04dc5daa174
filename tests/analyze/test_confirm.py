"""Attribution measured on real artifacts: a range widened at a concatenation is named at the
producer whose channel widened it, the ranking follows what keeping each layer float relieves,
and the ``keep_float`` fix verified by converting again relieves what attribution claimed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import qcheck
from qcheck.analyze.confirm import SMALL_GRAPH, measured_layers
from qcheck.analyze.evidence import ModelEvidence
from qcheck.analyze.layers import LayerFacts
from qcheck.results import Attribution, ranked_by_relief
from qcheck.types import Action, Cause, InputRange
from tests import tiny_models
from tests.field_models import architectures

FACTOR = 60.0


def planted_curve_net() -> tuple[Any, str, str]:
    """Zero-DCE with one output channel of the second convolution ×60 (and the curve layer
    reading that channel of the concatenation ÷60): the float function is unchanged, the
    concatenation's one shared range is 60× wider."""
    model = architectures.zero_dce()
    inner = model.get_layer("dce_net")
    convs = [layer for layer in inner.layers if type(layer).__name__ == "Conv2D"]
    producer, curve = convs[1], convs[2]
    # The curve layer reads the concatenation: the producer's channels follow convs[0]'s.
    tiny_models.plant_outlier_channel(producer, curve, FACTOR, channel=2,
                                      read_at=convs[0].filters + 2)
    concat = next(layer for layer in inner.layers if type(layer).__name__ == "Concatenate")
    return model, f"dce_net/{producer.name}", f"dce_net/{concat.name}"


@pytest.fixture(scope="module")
def curve_net() -> tuple[Any, str, str]:
    from qcheck.quiet import import_tensorflow

    import_tensorflow()
    return planted_curve_net()


@pytest.fixture(scope="module")
def curve_net_report(curve_net: tuple[Any, str, str]) -> Any:
    """The planted curve net checked once, every target attributed, for the tests that read
    the same report."""
    dark = tiny_models.training_images(30, seed=3) * 0.5
    return qcheck.check(curve_net[0], dark[:24], dark[24:], ["tflite-int8"], analyze_all=True,
                        readiness=False, fix_verification=False)


def test_a_widened_concatenation_is_named_at_its_producer(curve_net: tuple[Any, str, str],
                                                          curve_net_report: Any) -> None:
    _, producer, concat = curve_net
    report = curve_net_report
    entries = report.target("tflite-int8").attribution
    at_concat = next(a for a in entries
                     if a.layer == concat and a.cause is Cause.ACTIVATION_RANGE)
    assert at_concat.evidence["widened_by"] == producer
    at_producer = next(a for a in entries
                       if a.layer == producer and a.cause is Cause.ACTIVATION_RANGE)
    assert at_producer.evidence["widens"] == concat
    assert at_producer.drift >= at_concat.drift  # quantized at the shared, widened scale
    assert at_producer.evidence["widest_input_span"] >= 2 * at_producer.evidence[
        "next_input_span"]
    ranking = (report.target("tflite-int8").analysis or {})["ranking"]
    reliefs = [row["relief"] for row in ranking]
    assert len(reliefs) >= 2 and reliefs == sorted(reliefs, reverse=True)
    assert [a.drift for a in entries] == sorted((a.drift for a in entries), reverse=True)


@pytest.mark.parametrize("target", ["tflite-int8", "onnx-int8"])
def test_keep_float_starts_from_the_largest_relief_and_relieves_it(
        curve_net: tuple[Any, str, str], target: str) -> None:
    model, _, _ = curve_net
    dark = tiny_models.training_images(30, seed=3) * 0.5
    report = qcheck.check(model, dark[:24], dark[24:], [target],
                          thresholds=qcheck.Thresholds(max_delta_e=0.05), readiness=False)
    result = report.target(target)
    assert not result.passed
    top = ranked_by_relief(result.attribution)[0]
    assert top.relief is not None and top.relief > 0
    assert top.layer == (result.analysis or {})["ranking"][0]["layer"]
    analysis = result.analysis or {}
    assert len(analysis["image_indices"]) == 6  # every evaluation image: the target's own set
    keep = next(s for s in result.suggestions if s.action is Action.KEEP_FLOAT
                and s.layers == (top.layer,))
    assert keep.verified is not None and keep.verified.delta_e_mean is not None
    assert "relieves the most" in keep.reason
    assert result.metrics.delta_e_mean is not None
    relieved = result.metrics.delta_e_mean - keep.verified.delta_e_mean
    assert relieved >= top.relief - 0.1 * top.relief - 1e-4, (relieved, top.relief)


def _facts(names_kinds: list[tuple[str, str]]) -> ModelEvidence:
    facts = [LayerFacts(name, kind, ()) for name, kind in names_kinds]
    return ModelEvidence(model=None, facts=facts, input_name="image", input_range=None,  # type: ignore[arg-type]
                         input_stats=None, calib_stats={}, calib_pixels=np.zeros(0),  # type: ignore[arg-type]
                         eval_pixels=np.zeros(0))


def test_a_small_graph_has_every_layer_measured_a_large_one_the_screen_and_the_unmodelled(
        ) -> None:
    small = [("image", "InputLayer")] + [(f"conv{i}", "Conv2D") for i in range(SMALL_GRAPH)]
    screen = (Attribution("conv3", Cause.WEIGHT_ROUNDING, 0.5),)
    names = {name for name, _ in small}
    assert measured_layers(screen, _facts(small), names) == [
        "conv3", *(f"conv{i}" for i in range(SMALL_GRAPH) if i != 3)]
    large = [*small, ("norm", "LayerNormalization"), ("attend", "MultiHeadAttention"),
             ("gate", "Multiply"), ("head", "Dense")]
    screen = tuple(Attribution(f"conv{i}", Cause.WEIGHT_ROUNDING, 1.0 - i / 10)
                   for i in range(5))
    chosen = measured_layers(screen, _facts(large), {name for name, _ in large})
    assert chosen == ["conv0", "conv1", "conv2", "norm", "attend", "gate"]


def test_the_page_and_the_overlays_show_what_was_measured(curve_net_report: Any) -> None:
    report = curve_net_report
    ranking = (report.target("tflite-int8").analysis or {})["ranking"]
    files = report.files(explorer=True)
    overlays = {name.rsplit("/", 1)[-1]: content for name, content in files.items()
                if "explorer/" in name}
    assert "tflite-int8.relief.json" in overlays and "tflite-int8.measured.json" in overlays
    assert "tflite-int8.delta_e.json" in overlays  # the simulated figure, to compare
    page = str(files["report.html"])
    assert "measured on real artifacts" in page
    assert ranking[0]["layer"] in page


def test_builds_run_on_the_attribution_images_only(curve_net: tuple[Any, str, str]) -> None:
    """With more evaluation images than attribution uses, each measured build runs on the
    attribution images alone; its figure is the one an independent build gives on them."""
    from tests.field_models.test_measured_attribution import drift, independent_build

    model, _, _ = curve_net
    # 8-bit pixels, as qcheck holds every image, and no image twice (qcheck drops repeats).
    dark = (np.round(tiny_models.training_images(64, seed=8) * 0.5 * 255) / 255).astype(
        np.float32)
    seen = {image.tobytes() for image in dark[:24]}  # qcheck drops calibration images
    evaluation = np.unique(np.stack([i for i in dark[24:] if i.tobytes() not in seen]), axis=0)
    report = qcheck.check(model, dark[:24], evaluation, ["tflite-int8"], analyze_all=True,
                          readiness=False, fix_verification=False)
    assert report.images.evaluation == len(evaluation)
    analysis = report.target("tflite-int8").analysis or {}
    rows = analysis["image_indices"]
    assert len(rows) < len(evaluation)
    top = analysis["ranking"][0]
    inputs = evaluation[rows]
    reference = np.asarray(model(inputs))
    kept = independent_build(model, "tflite-int8", (top["layer"],), dark[:24],
                             InputRange(0, 1), inputs)
    assert drift(reference, kept, InputRange(0, 1)) == pytest.approx(
        analysis["target_on_attribution_images"] - top["relief"], rel=0.02, abs=1e-3)
