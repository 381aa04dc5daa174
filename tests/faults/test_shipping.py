"""What ships is what was measured: the model ``qcheck fix`` writes reproduces the artifact it
ships, the report says which fix shipped, training is seeded, and a fix keeps its target's
numeric scheme."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import converters
import qcheck
from sample_models.catalog import SAMPLES
from tests.faults.conftest import ROOT, run_cli

TRAP = next(s for s in SAMPLES if s.name == "per_tensor_trap")


def test_the_written_model_reproduces_the_shipped_fix(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The report names the fix that shipped; converting the model ``fix`` wrote gives the
    shipped artifact byte for byte. (Bias correction changes the float function on purpose:
    checking the written model measures against its own outputs, not the original's, which
    is why such a check reads 0.55 where the shipped fix measured 0.49 against the original.)"""
    out = tmp_path / "fixed"
    code, _, _ = run_cli(capsys, "fix", str(TRAP.path), "--target", "tflite-int8-per-tensor",
                         "-o", str(out))
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    shipped = [s for s in report["targets"][0]["suggestions"] if s.get("shipped")]
    assert len(shipped) == 1 and shipped[0]["action"] == "equalize_channels"
    assert shipped[0]["reason"].startswith("cross-layer equalization, then bias correction")
    written = out / "per_tensor_trap.equalized.keras"
    again = qcheck.check(written, targets=["tflite-int8-per-tensor"], analysis=False)
    artifact = (out / "tflite-int8-per-tensor.tflite").read_bytes()
    assert artifact == again.artifacts["tflite-int8-per-tensor"]


def test_a_check_ships_nothing(enhancer_path: Path) -> None:
    report = qcheck.check(str(enhancer_path), targets=["tflite-int8"],
                          thresholds=qcheck.Thresholds(max_delta_e=0.01),
                          fix_verification=False)
    data = json.loads(report.to_json())
    assert all(not s["shipped"] for s in data["targets"][0]["suggestions"])


def test_keep_float_on_int16x8_keeps_16_bit_activations(enhancer) -> None:  # type: ignore[no-untyped-def]
    from ai_edge_litert.interpreter import Interpreter

    from qcheck.load import ModelFeed, bundled_images
    from qcheck.types import InputRange

    calib, _ = bundled_images((32, 32))
    source = converters.ConversionSource(enhancer, (None, 32, 32, 3))
    content = converters.convert(
        converters.TARGETS["tflite-int16x8"], source, ModelFeed(calib, InputRange(0, 1)).samples,
        options=converters.ConversionOptions(keep_float=("conv_b",)))
    kinds = {np.dtype(d["dtype"]).name for d in Interpreter(model_content=content)
             .get_tensor_details() if d["quantization_parameters"]["scales"].size}
    assert "int16" in kinds and "int8" in kinds  # int16 activations, int8 weights
    float_ops = {op["op_name"] for op in Interpreter(model_content=content)._get_ops_details()}
    assert "DEQUANTIZE" in float_ops  # conv_b runs in float


def test_quantization_aware_training_is_seeded(enhancer_path: Path) -> None:
    """Two fine-tunings of the same model on the same images give the same weights."""
    script = textwrap.dedent(f"""
        import numpy as np
        from qcheck.advise.qat import fine_tune
        from qcheck.load import bundled_images, load_model
        model = load_model({str(enhancer_path)!r}).model
        images = bundled_images((32, 32))[0].pixels[:8]
        first = fine_tune(model, images, steps=20)[0].get_weights()
        second = fine_tune(model, images, steps=20)[0].get_weights()
        assert all(np.array_equal(a, b) for a, b in zip(first, second)), "not seeded"
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=600,
                          env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
