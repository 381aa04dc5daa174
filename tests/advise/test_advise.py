"""Fixes are applied, converted again and measured; ``qcheck fix`` ships the best one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import qcheck
from qcheck.advise.equalize import equalize
from qcheck.cli import main
from qcheck.load import bundled_images, load_model
from qcheck.types import Action
from sample_models.catalog import SAMPLES
from tests.analyze.test_attribution import _scale_channel_and_consumer

TRAP = next(s for s in SAMPLES if s.name == "per_tensor_trap")


def _suggestions(report, target: str):  # type: ignore[no-untyped-def]
    return {s.action: s for s in report.target(target).suggestions}


@pytest.mark.parametrize("name", ["per_tensor_trap", "healthy", "depthwise_rgb"])
def test_equalization_keeps_the_float_function(name: str) -> None:
    model = load_model(next(s.path for s in SAMPLES if s.name == name)).model
    equalized, pairs = equalize(model)
    assert pairs
    images = bundled_images((64, 64))[1].pixels
    np.testing.assert_allclose(np.asarray(equalized(images)), np.asarray(model(images)),
                               atol=1e-5)
    assert equalized is not model


def test_equalization_balances_the_trap() -> None:
    _, pairs = equalize(load_model(TRAP.path).model)
    depthwise = next(p for p in pairs if p.first == "depthwise")
    assert depthwise.ratio_before > 100 and depthwise.ratio_after < 10


def test_per_tensor_trap_fixes_are_verified() -> None:
    report = qcheck.check(TRAP.path, targets=["tflite-int8-per-tensor", "onnx-int8-per-tensor"])
    for target in ("tflite-int8-per-tensor", "onnx-int8-per-tensor"):
        assert not report.target(target).passed
        found = _suggestions(report, target)
        for action in (Action.EQUALIZE_CHANNELS, Action.PER_CHANNEL_WEIGHTS):
            verified = found[action].verified
            assert verified is not None and verified.passed, (target, action)
            assert verified.delta_e_mean < report.target(target).metrics.delta_e_mean
        best = [s for s in report.target(target).suggestions if s.best]
        assert [s.action for s in best] == [Action.PER_CHANNEL_WEIGHTS]  # cheapest that passes
        plain, corrected = (
            next(s for s in report.target(target).suggestions
                 if s.action is Action.EQUALIZE_CHANNELS and ("bias correction" in s.reason) is c)
            for c in (False, True))
        assert plain.verified is not None and corrected.verified is not None
        # Bias correction removes the mean shift per-tensor rounding leaves: measured better.
        assert corrected.verified.delta_e_mean < plain.verified.delta_e_mean
        qat = found[Action.QUANTIZATION_AWARE_TRAINING]
        assert qat.verified is None and "not verified" in (qat.verified_note or "")
    # A fix that changes what the app feeds or reads says so: keeping layers float makes the
    # per-tensor TFLite artifact's uint8 I/O float32; ONNX targets keep float I/O throughout.
    keep_float = _suggestions(report, "tflite-int8-per-tensor")[Action.KEEP_FLOAT]
    assert keep_float.verified is not None
    assert "input image: uint8 (scale 0.00392157, zero point 0) becomes float32" in (
        keep_float.io_change or ""), keep_float.io_change
    assert _suggestions(report, "onnx-int8-per-tensor")[Action.KEEP_FLOAT].io_change is None


@pytest.mark.parametrize("per_channel", [False, True])
def test_bias_correction_cancels_the_mean_shift_of_rounding(per_channel: bool) -> None:
    from qcheck.advise.bias_correction import correct_biases
    from qcheck.analyze.layers import layer_facts
    from qcheck.analyze.schemes import Scheme, quantize_kernel

    model = load_model(TRAP.path).model
    scheme = Scheme("int8", per_channel, None, False)
    calib, evaluation = bundled_images((64, 64))
    corrected, changed = correct_biases(model, scheme, [calib.pixels[i : i + 8]
                                                         for i in range(0, len(calib), 8)])
    assert {c.name for c in changed} >= {"depthwise", "pointwise", "to_rgb"}

    def rounded(m):  # type: ignore[no-untyped-def]
        copy = __import__("keras").models.clone_model(m)
        copy.set_weights(m.get_weights())
        for facts in layer_facts(copy):
            for kernel in facts.kernels:
                kernel.variable.assign(quantize_kernel(np.asarray(kernel.variable),
                                                       kernel.channel_axes, scheme))
        return copy

    def channel_means(m) -> np.ndarray:  # type: ignore[no-untyped-def]
        return np.asarray(m(evaluation.pixels)).mean(axis=(0, 1, 2))

    target = channel_means(model)
    before = np.abs(channel_means(rounded(model)) - target).max()
    after = np.abs(channel_means(rounded(corrected)) - target).max()
    assert after < 0.5 * before, (before, after)  # on images it was not measured on


@pytest.mark.compat
def test_a_planted_activation_outlier_is_fixed_and_verified(enhancer) -> None:  # type: ignore[no-untyped-def]
    planted = _scale_channel_and_consumer(enhancer, 300.0)
    report = qcheck.check(planted, targets=["tflite-int8", "onnx-int8"])
    for target in ("tflite-int8", "onnx-int8"):
        assert not report.target(target).passed
        found = _suggestions(report, target)
        passing = {a for a in (Action.EQUALIZE_CHANNELS, Action.INT16_ACTIVATIONS,
                               Action.KEEP_FLOAT)
                   if a in found and found[a].verified and found[a].verified.passed}
        assert passing, target
        # Fixes that did not help are still reported, with their numbers.
        assert all(s.verified is not None or s.verified_note for s in found.values())


def test_fix_verification_can_be_skipped() -> None:
    report = qcheck.check(TRAP.path, targets=["tflite-int8-per-tensor"], fix_verification=False)
    suggestions = report.target("tflite-int8-per-tensor").suggestions
    assert suggestions and all(s.verified is None and s.verified_note for s in suggestions)


def test_fix_ships_an_equalized_per_tensor_artifact(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fixed"
    code = main(["fix", str(TRAP.path), "--target", "tflite-int8-per-tensor", "-o", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "equalize_channels" in stdout and "per_channel_weights also passes" in stdout
    assert (out / "tflite-int8-per-tensor.tflite").read_bytes()[4:8] == b"TFL3"
    equalized = out / "per_tensor_trap.equalized.keras"
    assert equalized.exists()
    # What was shipped is what was measured: the equalized model passes per-tensor int8.
    again = qcheck.check(equalized, targets=["tflite-int8-per-tensor"], analysis=False)
    assert again.passed
    report = json.loads((out / "report.json").read_text())
    assert report["targets"][0]["suggestions"]


def test_fix_exits_1_when_nothing_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.qcheck]\nmax_delta_e = 0.01\n")
    monkeypatch.chdir(tmp_path)
    code = main(["fix", str(TRAP.path), "--target", "tflite-int8-per-tensor", "-o", "out",
                 "--quiet"])
    capsys.readouterr()
    assert code == 1
    assert not (tmp_path / "out" / "tflite-int8-per-tensor.tflite").exists()
    assert (tmp_path / "out" / "report.json").exists()


def test_fix_on_a_passing_target_ships_it_as_is(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["fix", str(TRAP.path), "--target", "tflite-int8", "-o", str(tmp_path / "o")])
    assert code == 0 and "already passes" in capsys.readouterr().out
    assert (tmp_path / "o" / "tflite-int8.tflite").exists()


# It trains (1000 steps: 23-40 s on 2 cores here): `make test-all`.
@pytest.mark.slow
def test_quantization_aware_training_is_trained_converted_and_measured(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--qat fine-tunes with tfmot in its own worker, converts the trained model and measures
    it like any fix. On the trap's per-tensor target tfmot's scheme (per-tensor depthwise
    kernels, like the target) lets training adapt the crushed channels: a real improvement,
    still short of passing; it is reported, and not shipped as a per-tensor fix."""
    code = main(["check", str(TRAP.path), "--targets", "tflite-int8-per-tensor", "--qat",
                 "--no-cache", "--quiet", "--out", str(tmp_path / "o")])
    capsys.readouterr()
    assert code == 1
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    (target,) = report["targets"]
    found = {s["action"]: s for s in target["suggestions"]}
    qat = found["quantization_aware_training"]
    assert qat["verified"] is not None, qat
    assert qat["verified"]["delta_e_mean"] < 0.6 * target["metrics"]["delta_e_mean"]
    assert not qat["best"]


def test_the_tf_keras_rebuild_computes_what_the_model_does(enhancer) -> None:  # type: ignore[no-untyped-def]
    from qcheck.advise.qat import rebuild_in_tf_keras

    images = bundled_images((32, 32))[1].pixels[:4]
    twin = rebuild_in_tf_keras(enhancer)
    assert [layer.name for layer in twin.layers] == [layer.name for layer in enhancer.layers]
    np.testing.assert_allclose(np.asarray(twin(images)), np.asarray(enhancer(images)),
                               atol=1e-6)


def test_quantization_aware_training_refuses_layers_tf_keras_lacks_by_name() -> None:
    import keras

    from qcheck.advise.qat import rebuild_in_tf_keras
    from qcheck.errors import ConversionError

    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 1, name="conv")(inputs)
    model = keras.Model(inputs, keras.layers.RMSNormalization(name="norm")(x))
    with pytest.raises(ConversionError, match=r"'norm' \(RMSNormalization\) has no tf-keras"):
        rebuild_in_tf_keras(model)


def test_a_fix_folder_says_what_ships_and_what_was_measured_before(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Only the shipped artifact looks shippable: the failing one measured before the fix is
    under unfixed/, shipped.json says what shipped, and the console says which verdict is
    the one before the fix."""
    out = tmp_path / "fixed"
    code = main(["fix", str(TRAP.path), "--target", "tflite-int8-per-tensor", "-o", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    name = "tflite-int8-per-tensor.tflite"
    assert not (out / "artifacts" / name).exists()
    unfixed = (out / "unfixed" / name).read_bytes()
    assert unfixed != (out / name).read_bytes()
    shipped = json.loads((out / "shipped.json").read_text())
    assert shipped["artifact"] == name and shipped["action"] == "equalize_channels"
    assert shipped["verified"]["passed"] and not shipped["before"]["passed"]
    assert shipped["unfixed"] == f"unfixed/{name}"
    report = json.loads((out / "report.json").read_text())
    assert report["targets"][0]["artifact"] == f"unfixed/{name}"
    assert "BEFORE THE FIX" in stdout
    assert "FAILED" not in stdout.replace("BEFORE THE FIX: FAILED", "")
    assert f"shipped {out / name}" in stdout


def test_switching_the_quantizer_is_verified_like_any_fix(enhancer) -> None:  # type: ignore[no-untyped-def]
    """``switch_quantizer``: the failing TFLite target built by ai-edge-quantizer instead, measured
    like the target; an independent build of the same artifact gives the same ΔE."""
    from skimage import color

    import converters
    from converters.options import AI_EDGE_QUANTIZER
    from qcheck.load import ModelFeed
    from qcheck.load.images import ImageSet
    from qcheck.runners import runner_for
    from qcheck.types import InputRange
    from tests import tiny_models

    planted = _scale_channel_and_consumer(enhancer, 300.0)
    calib = tiny_models.training_images(24, seed=1)
    evaluation = tiny_models.training_images(6, seed=2)
    report = qcheck.check(planted, calib, evaluation, ["tflite-int8"], readiness=False)
    result = report.target("tflite-int8")
    assert not result.passed
    switch = next(s for s in result.suggestions if s.action is Action.SWITCH_QUANTIZER)
    assert switch.verified is not None and switch.verified.delta_e_mean is not None
    assert switch.io_change is not None and "becomes int8" in switch.io_change
    spec = converters.TARGETS["tflite-int8"]
    source = converters.ConversionSource(planted, (None, tiny_models.SIZE, tiny_models.SIZE, 3))
    samples = ModelFeed(ImageSet(tuple(map(str, range(len(calib)))), calib, source="test"),
                        InputRange(0, 1)).samples
    artifact = converters.convert(spec, source, samples, options=converters.ConversionOptions(
        tflite_quantizer=AI_EDGE_QUANTIZER))
    with runner_for(spec.format, artifact) as runner:
        produced = runner.infer(evaluation)
    lab = [color.rgb2lab(np.clip(v, 0, 1).astype(np.float64))
           for v in (np.asarray(planted(evaluation)), produced)]
    independent = float(np.mean(color.deltaE_ciede2000(lab[0], lab[1])))
    assert switch.verified.delta_e_mean == pytest.approx(independent, rel=0.02, abs=0.01)
