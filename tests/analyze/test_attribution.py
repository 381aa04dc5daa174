"""Attribution names the planted defect's layer and cause; a clean model draws no warnings.

Each defect is planted in a tiny trained model in a way that leaves the float function
unchanged, so only quantization can reveal it.
"""

from __future__ import annotations

import numpy as np
import pytest

import qcheck
from qcheck.types import Cause, Severity
from tests import tiny_models


def _clone(model):  # type: ignore[no-untyped-def]
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _float_outputs(model) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(model(tiny_models.training_images(8, seed=9), training=False))


def _scale_channel_and_consumer(model, factor: float):  # type: ignore[no-untyped-def]
    """conv_a's channel 0 grows by ``factor``; conv_b reads it ÷ ``factor`` (ReLU commutes)."""
    planted = _clone(model)
    tiny_models.plant_outlier_channel(planted.get_layer("conv_a"), planted.get_layer("conv_b"),
                                      factor)
    return planted


def _dead_channel_with_huge_weights(model):  # type: ignore[no-untyped-def]
    """conv_b gains a ninth channel that never fires (huge negative bias, weights ×500)."""
    import keras

    inputs = keras.Input((tiny_models.SIZE, tiny_models.SIZE, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a")(inputs)
    x = keras.layers.Conv2D(9, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.Conv2D(3, 1, name="to_rgb")(x)
    planted = keras.Model(inputs, keras.layers.Add(name="residual")([inputs, x]))
    planted.get_layer("conv_a").set_weights(model.get_layer("conv_a").get_weights())
    kernel, bias = model.get_layer("conv_b").get_weights()
    huge = 500.0 * float(np.abs(kernel).max())
    extra = np.where(np.arange(kernel[..., :1].size).reshape(kernel[..., :1].shape) % 2, huge,
                     -huge)
    # Dead for any input its ReLU inputs can take (bounded well above what the images give),
    # yet small enough that its int32 bias still fits once quantized.
    bound = 4.0 * float(np.max(model.get_layer("conv_a")(
        tiny_models.training_images(16, seed=5)))) + 1.0
    planted.get_layer("conv_b").set_weights([np.concatenate([kernel, extra], axis=-1),
                                             np.append(bias, -np.abs(extra).sum() * bound)])
    consumer, consumer_bias = model.get_layer("to_rgb").get_weights()
    rows = np.concatenate([consumer, np.ones_like(consumer[:, :, :1, :])], axis=2)
    planted.get_layer("to_rgb").set_weights([rows, consumer_bias])
    return planted


@pytest.fixture(scope="module")
def clean(enhancer):  # type: ignore[no-untyped-def]
    return enhancer


def _top(report, target: str):  # type: ignore[no-untyped-def]
    result = report.target(target)
    assert result.attribution, f"{target} has no attribution"
    return result.attribution[0]


def _strongest(report, target: str):  # type: ignore[no-untyped-def]
    """The entry with the largest simulated figure: the cause the screen names."""
    result = report.target(target)
    assert result.attribution, f"{target} has no attribution"
    return max(result.attribution, key=lambda item: item.drift)


def test_activation_outlier_is_attributed_to_its_layer(clean) -> None:  # type: ignore[no-untyped-def]
    planted = _scale_channel_and_consumer(clean, 60.0)
    np.testing.assert_allclose(_float_outputs(planted), _float_outputs(clean), atol=1e-4)
    report = qcheck.check(planted, targets=["tflite-int8", "onnx-int8"], analyze_all=True)
    for target in ("tflite-int8", "onnx-int8"):
        # The cause is the simulation's (its figure per cause); the ranking follows what
        # keeping each layer float relieves on the real artifact (tests/analyze/test_confirm).
        top = _strongest(report, target)
        assert (top.layer, top.cause) == ("conv_a", Cause.ACTIVATION_RANGE), target
        assert top.evidence["dominant_channels"][0]["channel"] == 0
    assert any(f.layer == "conv_a" and f.cause is Cause.ACTIVATION_RANGE
               and f.severity is Severity.WARNING for f in report.findings)


def test_dead_channel_with_huge_weights_is_weight_rounding(clean) -> None:  # type: ignore[no-untyped-def]
    planted = _dead_channel_with_huge_weights(clean)
    np.testing.assert_allclose(_float_outputs(planted), _float_outputs(clean), atol=1e-4)
    report = qcheck.check(planted, targets=["tflite-int8-per-tensor", "tflite-int8"],
                          analyze_all=True)
    top = _top(report, "tflite-int8-per-tensor")
    assert (top.layer, top.cause) == ("conv_b", Cause.WEIGHT_ROUNDING)
    assert top.evidence["crushed_count"] >= 1
    per_channel = report.target("tflite-int8")
    assert all(not (a.layer == "conv_b" and a.cause is Cause.WEIGHT_ROUNDING
                    and a.delta_e > 0.5) for a in per_channel.attribution)
    assert any(f.layer == "conv_b" and f.cause is Cause.WEIGHT_ROUNDING
               for f in report.findings)


@pytest.mark.parametrize("target", ["onnx-fp16", "tflite-fp16"])
def test_values_past_float16_are_fp16_range(clean, target: str) -> None:  # type: ignore[no-untyped-def]
    planted = _scale_channel_and_consumer(clean, 3e5)
    np.testing.assert_allclose(_float_outputs(planted), _float_outputs(clean), atol=1e-3)
    report = qcheck.check(planted, targets=[target], analyze_all=True)
    top = _top(report, target)
    assert top.layer in ("conv_a", "conv_b")
    assert top.cause is Cause.FP16_RANGE
    assert any(f.cause is Cause.FP16_RANGE for f in report.findings)
    summary = report.target(target).analysis
    assert summary is not None
    assert summary["simulation_vs_real_delta_e"] <= max(0.5 * summary["real_delta_e"], 0.05)


def test_clean_model_draws_no_warning_and_no_attribution_above_threshold(clean) -> None:  # type: ignore[no-untyped-def]
    report = qcheck.check(clean, targets=["tflite-int8", "onnx-int8", "tflite-fp16"],
                          analyze_all=True)
    assert not [f for f in report.findings if f.severity is Severity.WARNING]
    for target in report.targets:
        assert target.passed
        assert all(a.delta_e < report.thresholds.max_delta_e for a in target.attribution)


@pytest.mark.compat
@pytest.mark.parametrize("target", ["tflite-int8", "tflite-int8-per-tensor", "onnx-int8",
                                    "tflite-int16x8", "onnx-fp16"])
def test_simulation_tracks_the_real_converter(clean, target: str) -> None:  # type: ignore[no-untyped-def]
    report = qcheck.check(clean, targets=[target], analyze_all=True)
    summary = report.target(target).analysis
    assert summary is not None
    # The simulated drift is the real drift within a third, and the simulated outputs are
    # closer to the real artifact's than the float model's are.
    assert summary["simulated_delta_e"] == pytest.approx(summary["real_delta_e"], rel=0.34,
                                                          abs=0.02)
    assert summary["simulation_vs_real_delta_e"] <= max(summary["real_delta_e"], 0.02)


def test_attribution_uses_keras_layer_names(clean) -> None:  # type: ignore[no-untyped-def]
    report = qcheck.check(clean, targets=["tflite-int8"], analyze_all=True)
    names = {layer.name for layer in clean.layers}
    assert {a.layer for a in report.target("tflite-int8").attribution} <= names


def test_no_analysis_skips_findings_and_attribution(clean) -> None:  # type: ignore[no-untyped-def]
    report = qcheck.check(clean, targets=["tflite-int8"], analysis=False,
                          thresholds=qcheck.Thresholds(max_delta_e=0.0001))
    assert report.findings == () and report.target("tflite-int8").attribution == ()


@pytest.mark.parametrize("target", ["tflite-int8-per-tensor", "onnx-fp16", "tflite-int16x8"])
def test_batched_simulation_matches_one_pass_per_configuration(enhancer, target: str) -> None:  # type: ignore[no-untyped-def]
    """The traced, batched forward (per-sample masks, shadow layers with rounded weights)
    gives what quantizing the named layers in place and running each configuration alone
    gives."""
    import converters
    from qcheck.analyze.layers import layer_facts
    from qcheck.analyze.schemes import scheme_for
    from qcheck.analyze.simulate import _TRACES, Config, Simulation
    from qcheck.analyze.stats import activation_stats
    from qcheck.types import InputRange

    images = tiny_models.training_images(3, seed=4)
    input_stats, calib_stats = activation_stats(enhancer, [tiny_models.training_images(8)])
    # Narrower ranges than calibration gave, so clipping changes something too.
    for stats in calib_stats.values():
        stats.high *= 0.7
    sim = Simulation(model=enhancer, facts=layer_facts(enhancer),
                     scheme=scheme_for(converters.TARGETS[target]), inputs=images,
                     reference=np.asarray(enhancer(images, training=False)),
                     output_range=InputRange.parse("0:1"), input_stats=input_stats,
                     calib_stats=calib_stats, batch_size=7)  # chunks mix configurations
    weighted = [f.name for f in sim.facts if f.weighted]
    configs = [Config(), Config(weights=(weighted[0],)), Config(activations=("conv_b",)),
               Config(clip_only=("conv_a",)), Config(quantize_input=True),
               Config(weights=tuple(weighted), activations=tuple(calib_stats),
                      quantize_input=True)]
    import tensorflow as tf

    options = tf.config.optimizer.get_experimental_options()
    batched = sim.outputs_each(configs)
    assert any(v is not None for v in _TRACES[enhancer].values())  # the traced path ran
    # It turns TensorFlow's graph optimizer off for its own passes only.
    assert tf.config.optimizer.get_experimental_options() == options
    alone = [sim._eager(config) for config in configs]
    for config, got, expected in zip(configs, batched, alone, strict=True):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=str(config))
    assert np.abs(alone[0] - sim.reference).max() < 1e-5  # nothing quantized: the float model
    changed = [np.abs(a - alone[0]).max() for a in alone[1:]]
    assert sum(c > 1e-4 for c in changed) >= 3  # the configurations do change the outputs


@pytest.mark.parametrize("target", ["tflite-int8", "onnx-int8"])
def test_artifact_ranges_are_read_per_keras_layer(enhancer, target: str) -> None:  # type: ignore[no-untyped-def]
    """The simulation can use the scale and zero point the converter stored for each layer's
    output; they agree with min/max calibration on the same images."""
    import converters
    from qcheck.analyze.artifact_ranges import artifact_ranges
    from qcheck.analyze.stats import activation_stats

    spec = converters.TARGETS[target]
    calibration = tiny_models.training_images(8, seed=3)
    content = converters.convert(spec, converters.ConversionSource(enhancer, (None, 32, 32, 3)),
                                 lambda: (row[np.newaxis] for row in calibration))
    _, stats = activation_stats(enhancer, [calibration])
    ranges = artifact_ranges(spec.format, content, stats, output_layer="residual")
    assert {"conv_a", "conv_b", "residual"} <= set(ranges)
    scale, zero = ranges["conv_b"]
    measured = stats["conv_b"]
    span = max(measured.high, 0.0) - min(measured.low, 0.0)
    assert scale == pytest.approx(span / 255, rel=0.05)
    assert 0 <= zero <= 255


def test_layers_fused_by_the_converter_have_no_range_of_their_own() -> None:
    """Conv2D → BatchNormalization → ReLU is one TFLite op with one quantized output: only the
    ReLU layer owns it, so the simulation leaves the other two outputs in float."""
    import keras

    import converters
    from qcheck.analyze.artifact_ranges import artifact_ranges

    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, name="to_rgb")(x))
    calibration = tiny_models.training_images(4, seed=2)[:, :16, :16]
    spec = converters.TARGETS["tflite-int8"]
    content = converters.convert(spec, converters.ConversionSource(model, (None, 16, 16, 3)),
                                 lambda: (row[np.newaxis] for row in calibration))
    ranges = artifact_ranges(spec.format, content, ["conv", "bn", "relu", "to_rgb"],
                             output_layer="to_rgb")
    assert set(ranges) == {"relu", "to_rgb"}


def _deep_simulation(target: str = "tflite-int8"):  # type: ignore[no-untyped-def]
    """22 weighted layers, near-identity 1×1 convolutions, with conv_10's channel 0 ×300 and
    read ÷300 by conv_11: the same function, a 300× wider activation range there."""
    import keras

    import converters
    from qcheck.analyze.layers import layer_facts
    from qcheck.analyze.schemes import scheme_for
    from qcheck.analyze.simulate import Simulation
    from qcheck.analyze.stats import activation_stats
    from qcheck.types import InputRange

    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)  # lift's and to_rgb's initial weights: the same every run
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 1, activation="relu", name="lift")(inputs)
    for index in range(20):
        x = keras.layers.Conv2D(8, 1, activation="relu", name=f"conv_{index}")(x)
    model = keras.Model(inputs, keras.layers.Add(name="residual")(
        [inputs, keras.layers.Conv2D(3, 1, name="to_rgb")(x)]))
    for layer in model.layers:
        if layer.name.startswith("conv_"):
            kernel = np.eye(8, dtype=np.float32)[None, None] + rng.normal(0, 0.05, (1, 1, 8, 8))
            layer.set_weights([kernel.astype(np.float32), np.zeros(8, np.float32)])
    tiny_models.plant_outlier_channel(model.get_layer("conv_10"), model.get_layer("conv_11"),
                                      300.0)  # its biases are zero: the float function holds

    images = tiny_models.training_images(8, seed=5)[:, :16, :16]
    input_stats, calib_stats = activation_stats(model, [images])
    return Simulation(model=model, facts=layer_facts(model),
                      scheme=scheme_for(converters.TARGETS[target]), inputs=images[:4],
                      reference=np.asarray(model(images[:4])),
                      output_range=InputRange.parse("0:1"), input_stats=input_stats,
                      calib_stats=calib_stats)


def test_deep_models_are_screened_and_still_name_the_planted_layer() -> None:
    """Past 16 layers, attribution measures groups of 8 first and only the strong groups layer
    by layer: far fewer passes, the same culprit."""
    from qcheck.analyze import MIN_DELTA_E, activation_range, weight_rounding

    sim = _deep_simulation()
    found = [*weight_rounding.attribute(sim), *activation_range.attribute(sim)]
    top = max(found, key=lambda a: a.delta_e)
    assert (top.layer, top.cause) == ("conv_10", Cause.ACTIVATION_RANGE), sorted(
        (round(a.delta_e, 4), a.layer, a.cause.value) for a in found)[-5:]
    assert top.delta_e > 10 * MIN_DELTA_E
    one_by_one = sum(f.weighted for f in sim.facts) + len(sim.quantized_layers)
    assert sim.configurations < 0.85 * one_by_one, (sim.configurations, one_by_one)


def test_screening_weighs_each_cause_against_the_strongest_seen() -> None:
    """Once an activation range has shown a drift 4× any group of weights can reach, no
    weight is measured alone (its group already bounds it); measured first, they are."""
    import math

    from qcheck.analyze import activation_range, weight_rounding

    groups = math.ceil(22 / 8)  # lift, conv_0..19, to_rgb
    alone = _deep_simulation("tflite-int8")
    assert weight_rounding.attribute(alone) and alone.configurations > groups
    after = _deep_simulation("tflite-int8")
    strongest = max(a.delta_e for a in activation_range.attribute(after))
    before = after.configurations
    rounding = weight_rounding.attribute(after)
    assert after.configurations - before == groups
    assert all(a.delta_e < 0.25 * strongest for a in rounding)


def test_targets_that_round_weights_alike_measure_them_once(clean) -> None:  # type: ignore[no-untyped-def]
    """TFLite's and ONNX Runtime's per-tensor int8 round weights the same way: the second
    target reuses the first's weight measurements (same images, same figures) and runs only
    what depends on its own activation ranges."""
    planted = _dead_channel_with_huge_weights(clean)
    targets = ["tflite-int8-per-tensor", "onnx-int8-per-tensor"]
    report = qcheck.check(planted, targets=targets, analyze_all=True, readiness=False,
                          fix_verification=False, cache=False)
    first, second = (report.target(name) for name in targets)
    assert first.analysis and second.analysis
    assert first.analysis["images"] == second.analysis["images"]

    def rounding(result):  # type: ignore[no-untyped-def]
        return {a.layer: a.delta_e for a in result.attribution
                if a.cause is Cause.WEIGHT_ROUNDING}

    assert rounding(first) and rounding(first) == rounding(second)
    top = _strongest(report, targets[1])
    assert (top.layer, top.cause) == ("conv_b", Cause.WEIGHT_ROUNDING)
    weighted = sum(1 for layer in planted.layers if layer.weights)
    assert second.analysis["configurations"] <= first.analysis["configurations"] - weighted


def test_attribution_image_budget_follows_the_input_size() -> None:
    """The forward passes attribution costs grow with the *input* pixels: a classifier's
    tiny output must not buy it the image count of a 16² image model."""
    import keras

    from qcheck.analyze import MIN_IMAGES_NON_IMAGE, PIXEL_BUDGET

    keras.utils.set_random_seed(0)
    inputs = keras.Input((128, 128, 3), name="image")
    x = keras.layers.Conv2D(8, 3, strides=4, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(4, name="logits")(x))
    report = qcheck.check(model, targets=["tflite-int8"], analyze_all=True, readiness=False,
                          fix_verification=False, cache=False)
    analysis = report.target("tflite-int8").analysis
    assert analysis is not None
    assert analysis["images"] == max(PIXEL_BUDGET // (128 * 128), MIN_IMAGES_NON_IMAGE)


def test_overlapping_simulations_restore_the_optimizer_once_the_last_ends() -> None:
    """Two simulations on different threads share the process's optimizer switch: the first
    to end must not turn the optimizer back on under the other, and the last restores it."""
    import tensorflow as tf

    from qcheck.analyze.forward import _GraphRewrites

    def disabled() -> bool:
        return bool(tf.config.optimizer.get_experimental_options()["disable_meta_optimizer"])

    before = disabled()
    switch = _GraphRewrites()
    first, second = switch.off(), switch.off()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert disabled()  # the second is still running
    second.__exit__(None, None, None)
    assert disabled() is before
