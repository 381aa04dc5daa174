"""The architectures people ship, through ``check --analyze-all`` on both formats, each with its
numbers checked: output kind and range inferred as a user would expect, metrics recomputed here
from the artifacts themselves (LiteRT and ONNX Runtime, scikit-image), layers named by path,
and the simulation close to the real artifact where it models every rounding the artifact does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from skimage import color

from tests.faults.conftest import run_cli
from tests.field_models import architectures

TARGETS = ("tflite-int8", "onnx-int8")
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _checked(build: Callable[[], Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
             input_range: str = "0:1") -> tuple[dict[str, Any], Path, Any]:
    model = build()
    path = tmp_path / "model.keras"
    model.save(path)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "check", str(path), "--targets", ",".join(TARGETS),
                           "--analyze-all", f"--input-range={input_range}", "--out", str(out))
    assert code in (0, 1), err
    report = json.loads((out / "report.json").read_text())
    for target in report["targets"]:
        assert target["error"] is None, target["error"]
        assert target["analysis"] is not None
    return report, out, model


def _artifact_outputs(out: Path, target: str, inputs: np.ndarray) -> np.ndarray:
    """The artifact run here on its own, with its own input and output quantization."""
    content = (out / "artifacts" / f"{target}{'.tflite' if 'tflite' in target else '.onnx'}")
    if target.startswith("tflite"):
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=content.read_bytes())
        detail = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(detail["index"], list(inputs.shape))
        interpreter.allocate_tensors()
        scale, zero = detail["quantization"]
        data = inputs if not scale else np.clip(np.round(inputs / scale) + zero,
                                                *_limits(detail["dtype"])).astype(detail["dtype"])
        interpreter.set_tensor(detail["index"], data)
        interpreter.invoke()
        result = interpreter.get_output_details()[0]
        values = interpreter.get_tensor(result["index"]).astype(np.float32)
        scale, zero = result["quantization"]
        return (values - zero) * scale if scale else values
    import onnxruntime as ort

    session = ort.InferenceSession(content.read_bytes(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: inputs})[0])


def _limits(dtype: Any) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _evaluation(size: tuple[int, int]) -> np.ndarray:
    from qcheck.load import bundled_images

    return bundled_images(size)[1].pixels


def _fidelity(target: dict[str, Any]) -> tuple[float, float]:
    analysis = target["analysis"]
    measure = analysis["measure"]
    return analysis[f"simulated_{measure}"], analysis[f"real_{measure}"]


def test_espcn_super_resolution_of_lightness(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    report, out, model = _checked(architectures.espcn, tmp_path, capsys)
    small = _evaluation((16, 16)) @ LUMA[:, None]
    reference = np.asarray(model(small))
    for target in report["targets"]:
        assert target["output"]["kind"] == "image" and "1-channel" in target["output"]["reason"]
        metrics = target["metrics"]
        assert metrics["delta_e_mean"] is None and metrics["channel_bias"] is None
        got = _artifact_outputs(out, target["name"], small)
        lightness = [color.rgb2lab(np.repeat(np.clip(v, 0, 1), 3, axis=-1))[..., 0]
                     for v in (reference, got)]
        expected = float(np.mean(np.abs(lightness[1] - lightness[0])))
        assert metrics["delta_l_mean"] == pytest.approx(expected, rel=0.02, abs=2e-3)
        simulated, real = _fidelity(target)
        assert simulated == pytest.approx(real, rel=0.25)


def test_zero_dce_nested_curve_net(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report, _, _ = _checked(architectures.zero_dce, tmp_path, capsys)
    assert any(f["layer"].startswith("dce_net/") for f in report["findings"])
    for target in report["targets"]:
        assert all(a["layer"] != "dce_net" for a in target["attribution"])  # opened up
        simulated, real = _fidelity(target)
        assert simulated == pytest.approx(real, rel=0.25)


def test_unet_with_a_backbone_and_a_sigmoid_head(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """−1:1 in, sigmoid 0:1 out: read in 0:1 (a third more error than reading it in −1:1)."""
    report, out, model = _checked(architectures.unet_sigmoid, tmp_path, capsys, "-1:1")
    inputs = _evaluation((32, 32)) * 2 - 1
    reference = np.asarray(model(inputs))
    for target in report["targets"]:
        assert target["output"]["range"] == "0:1" and "sigmoid" in target["output"]["reason"]
        got = _artifact_outputs(out, target["name"], inputs)
        expected = float(np.mean(color.deltaE_ciede2000(
            color.rgb2lab(np.clip(reference, 0, 1)), color.rgb2lab(np.clip(got, 0, 1)))))
        assert target["metrics"]["delta_e_mean"] == pytest.approx(expected, rel=0.02)
        layers = [a["layer"] for a in target["attribution"]]
        assert all("/" not in layer or layer.startswith("backbone/") for layer in layers)


def test_oxford_unet_class_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report, out, model = _checked(architectures.oxford_unet, tmp_path, capsys)
    inputs = _evaluation((32, 32))
    expected_classes = np.argmax(np.asarray(model(inputs)), axis=-1)
    for target in report["targets"]:
        assert target["output"]["kind"] == "classes"
        metrics = target["metrics"]
        assert metrics["delta_e_mean"] is None and metrics["psnr_db"] is None
        got = np.argmax(_artifact_outputs(out, target["name"], inputs), axis=-1)
        assert metrics["class_agreement"] == pytest.approx(
            float(np.mean(got == expected_classes)), abs=1e-6)  # 6 decimals
        assert 0.0 < metrics["miou"] <= 1.0
        assert target["analysis"]["measure"] == "class_disagreement"


@pytest.mark.parametrize(("build", "input_range", "scale"), [
    (architectures.efficientnet_classifier, "0:255", 255.0),
    (architectures.mobilenet_v3_classifier, "0:1", 1.0)])
def test_classifiers_gate_on_top1_agreement(build: Callable[[], Any], input_range: str,
                                            scale: float, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    report, out, model = _checked(build, tmp_path, capsys, input_range)
    inputs = _evaluation((32, 32)) * scale
    expected = np.argmax(np.asarray(model(inputs)), axis=-1)
    limits = report["thresholds"]
    for target in report["targets"]:
        assert target["output"]["kind"] == "classes"
        got = np.argmax(_artifact_outputs(out, target["name"], inputs), axis=-1)
        agreement = float(np.mean(got == expected))
        assert target["metrics"]["top1_agreement"] == pytest.approx(agreement, abs=1e-6)
        gated = agreement >= 0.99 and target["metrics"]["sqnr_db"] >= 20
        assert target["passed"] == gated, (target["failures"], limits)
        assert target["analysis"]["measure"] == "relative_error"


def test_the_seed_example_3_is_flagged_and_simulated_faithfully(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report, _, _ = _checked(architectures.example3, tmp_path, capsys)
    mixing = [f for f in report["findings"] if f["cause"] == "channel_mixing"]
    assert len(mixing) == 1 and mixing[0]["layer"].startswith("depthwise_conv2d")
    assert "% of the output error" in mixing[0]["detail"]
    for target in report["targets"]:
        simulated, real = _fidelity(target)
        assert simulated == pytest.approx(real, rel=0.25)


def test_mirnet_attention_with_keras_ops_nodes(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """``keras.ops`` nodes (mean, max, stack, slicing) have no weights: attribution walks
    past them and still names the layers around them."""
    report, _, _ = _checked(architectures.mirnet_block, tmp_path, capsys)
    for target in report["targets"]:
        named = {a["layer"] for a in target["attribution"]}
        assert any(name.startswith("conv2d") for name in named), named


def test_pass_through_layers_are_not_listed_again() -> None:
    """A depth-to-space (reshape, permute, reshape) after a convolution carries its output's
    range unchanged: attribution names the convolution once and the pass-through layers in
    its evidence, instead of four rows with one number."""
    import qcheck

    model = architectures.espcn()
    # Default names carry the process's layer count (conv2d_2, or conv2d_56 later on).
    convolution = [layer.name for layer in model.layers if type(layer).__name__ == "Conv2D"][-1]
    shuffle = [layer.name for layer in model.layers
               if type(layer).__name__ in ("Reshape", "Permute")]
    report = qcheck.check(model, targets=["tflite-int8"], analyze_all=True, readiness=False)
    rows = report.target("tflite-int8").attribution
    ranges = [a for a in rows if a.cause.value == "activation_range"]
    names = [a.layer for a in ranges]
    assert convolution in names
    assert not set(shuffle) & set(names), names
    top = next(a for a in ranges if a.layer == convolution)
    assert top.evidence["same_range_as"] == shuffle
    assert len({(a.cause, round(a.drift, 12)) for a in rows}) == len(rows)
