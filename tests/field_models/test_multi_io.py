"""Models with several inputs or outputs, checked the way a user checks them
(``qcheck check --analyze-all`` on both formats, extra inputs fed from folders), with every
metric recomputed here from the artifacts qcheck wrote: run on LiteRT and ONNX Runtime by this
file's own code (inputs and outputs found by name, integer I/O quantized here) and scored
with scikit-image against the Keras model's own outputs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from skimage import color

from qcheck.cli import main
from tests import tiny_models
from tests.field_models import multi_io

TARGETS = ("tflite-int8", "onnx-int8")


def _write_images(folder: Path, pixels: np.ndarray, prefix: str) -> list[str]:
    folder.mkdir(parents=True)
    stems = []
    for index, image in enumerate(pixels):
        stem = f"{prefix}{index:02d}"
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(folder / f"{stem}.png")
        stems.append(stem)
    return stems


def _read_images(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB"), np.float32) / 255.0
                     for p in sorted(folder.glob("*.png"))])


class _Setup:
    """Calibration and evaluation folders of 32×32 photographs (written as PNG, so what
    qcheck reads is exactly what this file reads)."""

    def __init__(self, root: Path):
        self.root = root
        self.calib, self.eval = root / "calib", root / "eval"
        self.calib_stems = _write_images(self.calib, tiny_models.training_images(12, seed=7),
                                         "c")
        self.eval_stems = _write_images(self.eval, tiny_models.training_images(8, seed=8), "e")


def _feed_masks(setup: _Setup) -> tuple[list[str], dict[str, np.ndarray]]:
    """One binary mask PNG per image (white: known pixel), in a folder of its own."""
    folder = setup.root / "masks"
    folder.mkdir()
    stems = setup.calib_stems + setup.eval_stems
    for stem, mask in zip(stems, multi_io.masks(len(stems), seed=11), strict=True):
        Image.fromarray((mask[..., 0] * 255).astype(np.uint8), mode="L").save(
            folder / f"{stem}.png")
    return ["--feed", f"mask={folder}"], {"mask": np.stack(
        [np.asarray(Image.open(folder / f"{s}.png"), np.float32)[..., None] / 255.0
         for s in setup.eval_stems])}


def _feed_noise(setup: _Setup) -> tuple[list[str], dict[str, np.ndarray]]:
    """A noise-level map per image as ``.npy`` (exact values)."""
    folder = setup.root / "sigma"
    folder.mkdir()
    stems = setup.calib_stems + setup.eval_stems
    levels = multi_io.noise_levels(len(stems), seed=12)
    for stem, level in zip(stems, levels, strict=True):
        np.save(folder / f"{stem}.npy", level)
    return ["--feed", f"noise_level={folder}"], {"noise_level": levels[len(setup.calib_stems):]}


def _no_feed(setup: _Setup) -> tuple[list[str], dict[str, np.ndarray]]:
    return [], {}


def _outlier_two_head() -> Any:
    return multi_io.two_head(outlier=300.0)


CASES = [
    pytest.param(multi_io.inpainting_net, _feed_masks, id="inpainting"),
    pytest.param(multi_io.ffdnet_denoiser, _feed_noise, id="ffdnet"),
]


def _quantized(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    scale, zero = detail["quantization"]
    if not scale:
        return values.astype(np.float32)
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(values / scale) + zero, info.min, info.max).astype(detail["dtype"])


def _run_tflite(content: bytes, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    count = len(next(iter(feeds.values())))
    for detail in interpreter.get_input_details():
        interpreter.resize_tensor_input(detail["index"], [count, *detail["shape"][1:]])
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], _quantized(feeds[detail["name"]], detail))
    interpreter.invoke()
    found = {}
    for detail in interpreter.get_output_details():
        raw = interpreter.get_tensor(detail["index"]).astype(np.float32)
        scale, zero = detail["quantization"]
        found[detail["name"]] = (raw - zero) * scale if scale else raw
    return found


def _run_onnx(content: bytes, feeds: dict[str, np.ndarray], names: list[str]
              ) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(content, providers=["CPUExecutionProvider"])
    fed = {i.name: feeds[i.name].astype(np.float32) for i in session.get_inputs()}
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, fed),
                    strict=True))


def _recomputed(reference: np.ndarray, produced: np.ndarray) -> dict[str, float]:
    """The contract's figures from scratch: CIEDE2000 (or |ΔL*| for one channel) mean, p95
    and max on outputs clipped to 0:1, PSNR on those values, and each colour channel's mean
    signed error in 8-bit levels."""
    unit = [np.clip(np.asarray(v, np.float64), 0, 1) for v in (reference, produced)]
    rgb = [np.repeat(u, 3, axis=-1) if u.shape[-1] == 1 else u for u in unit]
    lab = [color.rgb2lab(v) for v in rgb]
    figures: dict[str, float] = {
        "psnr_db": float(10 * np.log10(1 / np.mean((rgb[1] - rgb[0]) ** 2)))}
    if reference.shape[-1] == 3:
        delta = color.deltaE_ciede2000(lab[0], lab[1])
        figures.update({"delta_e_mean": float(np.mean(delta)),
                        "delta_e_p95": float(np.percentile(delta, 95)),
                        "delta_e_max": float(np.max(delta))})
        bias = (unit[1] - unit[0]).reshape(-1, 3).mean(axis=0) * 255
        figures.update({f"bias_{c}": float(b) for c, b in zip("rgb", bias, strict=True)})
    else:
        delta = np.abs(lab[0][..., 0] - lab[1][..., 0])
        figures.update({"delta_l_mean": float(np.mean(delta)),
                        "delta_l_p95": float(np.percentile(delta, 95)),
                        "delta_l_max": float(np.max(delta))})
    return figures


def _reported(metrics: dict[str, Any], name: str) -> float:
    return float(metrics["channel_bias"][name[-1]]) if name.startswith("bias_") \
        else float(metrics[name])


@pytest.mark.parametrize(("build", "feed"), CASES)
def test_several_inputs_are_checked_and_every_metric_recomputes_from_the_artifacts(
        tmp_path: Path, build: Callable[[], Any],
        feed: Callable[[_Setup], tuple[list[str], dict[str, np.ndarray]]]) -> None:
    _checked_and_recomputed(tmp_path, build, feed)


def _checked_and_recomputed(tmp_path: Path, build: Callable[[], Any],
                            feed: Callable[[_Setup], tuple[list[str], dict[str, np.ndarray]]]
                            ) -> dict[str, Any]:
    """``check --analyze-all`` on both formats, then each output's metric recomputed here
    from the artifacts; the report."""
    import keras

    setup = _Setup(tmp_path)
    model = build()
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    flags, extra = feed(setup)
    out = tmp_path / "out"
    code = main(["check", str(path), "--calib", str(setup.calib), "--eval", str(setup.eval),
                 "--targets", ",".join(TARGETS), "--analyze-all", "--no-cache", "--quiet",
                 "-o", str(out), *flags])
    report = json.loads((out / "report.json").read_text())
    assert code == (0 if report["passed"] else 1)
    inputs = [t["name"] for t in report["model"]["inputs"]]
    outputs = [t["name"] for t in report["model"]["outputs"]]
    assert inputs == [t._keras_history[0].name for t in model.inputs]
    assert outputs == list(model.output_names)

    images = _read_images(setup.eval)
    feeds = {inputs[0]: images, **extra}
    fed = [feeds[n] for n in inputs]
    floats = keras.models.load_model(path).predict(fed if len(fed) > 1 else fed[0], verbose=0)
    floats = dict(zip(outputs, floats if len(outputs) > 1 else [floats], strict=True))
    for target in report["targets"]:
        assert target["error"] is None, target["error"]
        content = (out / target["artifact"]).read_bytes()
        produced = _run_tflite(content, feeds) if target["format"] == "tflite" \
            else _run_onnx(content, feeds, outputs)
        assert sorted(produced) == sorted(outputs), "the artifact keeps the Keras output names"
        judged = target.get("outputs") or [{**target, "name": outputs[0]}]
        assert [o["name"] for o in judged] == outputs
        for entry in judged:
            figures = _recomputed(floats[entry["name"]], produced[entry["name"]])
            for metric, figure in figures.items():
                assert _reported(entry["metrics"], metric) == pytest.approx(
                    figure, rel=0.02, abs=0.02), (target["name"], entry["name"], metric)
        assert target["passed"] == all(o["passed"] for o in judged)
        io = target["readiness"]["io"]
        assert [t["name"] for t in io["inputs"]] == inputs
        assert [t["name"] for t in io["outputs"]] == outputs
        assert target["attribution"], "--analyze-all attributes every target"
    junit = (out / "junit.xml").read_text()
    for target in report["targets"]:
        names = [f"{target['name']}[{o}]" for o in outputs] if len(outputs) > 1 \
            else [target["name"]]
        assert all(f'name="{name}"' in junit for name in names)
    return dict(report)


def test_an_outlier_in_one_heads_branch_fails_that_head_alone_and_is_attributed_there(
        tmp_path: Path) -> None:
    """A two-head model (RGB + sigmoid confidence) whose confidence branch's convolution
    carries a planted outlier channel, checked and recomputed as above: the confidence head
    fails, the RGB head passes, and attribution runs through the confidence output and names
    the branch's layers, on both formats."""
    report = _checked_and_recomputed(tmp_path, _outlier_two_head, _no_feed)
    assert not report["passed"]
    branch = {"conf_conv", "confidence"}
    for target in report["targets"]:
        verdicts = {o["name"]: o["passed"] for o in target["outputs"]}
        assert verdicts == {"enhanced": True, "confidence": False}, target["name"]
        assert all(f.startswith("confidence: ") for f in target["failures"])
        assert target["analysis"]["output"] == "confidence"
        assert target["attribution"][0]["layer"] == "conf_conv"
        assert target["attribution"][0]["cause"] == "activation_range"
        assert target["analysis"]["ranking"][0]["layer"] in branch
        measured = {r["layer"]: r["measured"] for r in target["analysis"]["ranking"]}
        # Only the planted layer quantized already costs what the whole target does.
        assert measured["conf_conv"] > 0.8 * target["analysis"]["target_on_attribution_images"]
        best = next(s for s in target["suggestions"] if s.get("best"))
        assert best["verified"]["passed"]


def test_a_second_input_with_nothing_to_feed_it_is_a_usage_error_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import keras

    image = keras.Input((32, 32, 3))
    mask = keras.Input((32, 32, 1), name="mask")
    joined = keras.layers.Concatenate()([image, mask])
    model = keras.Model([image, mask], keras.layers.Conv2D(3, 1)(joined))
    path = tmp_path / "two_inputs.keras"
    model.save(path)
    assert main(["check", str(path), "-o", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "Traceback" not in error
    assert error.startswith("error: ")
    assert "'mask'" in error and "[None, 32, 32, 1]" in error and "--feed mask=" in error
    assert not (tmp_path / "out" / "report.json").exists()


def strength_two_scales() -> Any:
    """A strength control (a scalar input) on an enhancer of any input size with two outputs:
    the image at its own scale and at twice it (a multi-scale super-resolution head)."""
    import keras

    keras.utils.set_random_seed(6)
    image = keras.Input((None, None, 3))
    strength = keras.Input((1,), name="strength")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(image)
    x = keras.layers.Multiply()([x, keras.layers.Reshape((1, 1, 1))(strength)])
    same = keras.layers.Conv2D(3, 3, padding="same", name="x1")(x)
    doubled = keras.layers.Conv2D(3, 3, padding="same", name="x2")(
        keras.layers.UpSampling2D(2)(x))
    return keras.Model([image, strength], [same, doubled], name="strength_sr")


def test_a_scalar_input_and_outputs_of_two_sizes_through_the_api(tmp_path: Path) -> None:
    """An in-memory model of any size, its scalar input fed a constant through the API, its
    outputs at 32² and 64² judged each on its own and recomputed from the artifact."""
    import qcheck
    from qcheck.settings import ModelSettings

    model = strength_two_scales()
    calib = tiny_models.training_images(8, seed=9)
    evaluation = tiny_models.training_images(6, seed=10)
    report = qcheck.check(model, calib, evaluation, ["tflite-int8"], readiness=False,
                          settings=ModelSettings.build(input_size="32x32",
                                                       feeds={"strength": 0.7}))
    target = report.target("tflite-int8")
    assert [(o.name, o.spec.kind.value) for o in target.outputs] == [("x1", "image"),
                                                                      ("x2", "image")]
    out = tmp_path / "out"
    report.write(out)
    content = (out / target.artifact).read_bytes()
    inputs = [t._keras_history[0].name for t in model.inputs]
    fed = {inputs[0]: evaluation, "strength": np.full((6, 1), 0.7, np.float32)}
    floats = model.predict([fed[name] for name in inputs], verbose=0)
    produced = _run_tflite(content, fed)
    assert produced["x2"].shape == (6, 64, 64, 3)
    for name, reference in zip(("x1", "x2"), floats, strict=True):
        reported = target.output(name).metrics.to_dict()
        for metric, figure in _recomputed(reference, produced[name]).items():
            assert _reported(reported, metric) == pytest.approx(figure, rel=0.02, abs=0.02), (
                name, metric)


def test_qcheck_fix_ships_a_fix_measured_on_a_lightness_output_and_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``qcheck fix`` on the two-head model whose confidence head fails: the verified fix is
    judged on every output, shipped, and named with the figure of the output it was for (a
    lightness output has no ΔE)."""
    setup = _Setup(tmp_path)
    path = tmp_path / "two_head.keras"
    _outlier_two_head().save(path)
    out = tmp_path / "fixed"
    code = main(["fix", str(path), "--target", "tflite-int8", "--calib", str(setup.calib),
                 "--eval", str(setup.eval), "--no-cache", "-o", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed[-600:]
    assert (out / "tflite-int8.tflite").is_file()
    assert "fixed by " in printed and "ΔL* " in printed
