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
from tests.test_analysis import _scale_channel_and_consumer

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
        qat = found[Action.QUANTIZATION_AWARE_TRAINING]
        assert qat.verified is None and "not verified" in (qat.verified_note or "")


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


def test_qat_is_refused_until_it_exists(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(TRAP.path), "--qat", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "--qat" in err and "not available" in err
