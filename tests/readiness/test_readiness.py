"""Release readiness through the command a user runs: the kernel split, a runtime that refuses
an artifact, latency and size gates, op coverage and the I/O contract."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qcheck.cli import main
from sample_models.catalog import SAMPLES

SAMPLE = {sample.name: sample for sample in SAMPLES}


def _check(capsys: pytest.CaptureFixture[str], tmp_path: Path, model: Path, *options: str
           ) -> tuple[int, dict[str, Any], str]:
    out = tmp_path / "report"
    code = main(["check", str(model), "--out", str(out), "--no-analysis", *options])
    printed = capsys.readouterr().out
    return code, json.loads((out / "report.json").read_text()), printed


def _target(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in report["targets"] if t["name"] == name)


def _with_dead_channel(path: Path, inputs: Any, features: Any) -> Path:
    """``features`` → a Conv2D (ReLU) with one dead channel of huge weights and a huger
    negative bias (an int8 requantization scale far past what XNNPACK accepts) → RGB."""
    from keras import Model, layers

    conv = layers.Conv2D(8, 3, padding="same", activation="relu", name="dead_conv")
    hidden = conv(features)
    kernel, bias = conv.get_weights()
    kernel[..., 0], bias[0] = 1e5, -1e7
    conv.set_weights([kernel, bias])
    outputs = layers.Conv2D(3, 1, activation="sigmoid", name="to_rgb")(hidden)
    Model(inputs, outputs).save(path)
    return path


def _refusing_model(path: Path) -> Path:
    """The dead channel right after the input: XNNPACK refuses to prepare the model when the
    interpreter allocates it, while TFLite's built-in kernels run it."""
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((32, 32, 3), name="image")
    return _with_dead_channel(path, inputs, inputs)


def _refusing_at_invoke_model(path: Path) -> Path:
    """The same dead channel behind a Conv2DTranspose in a model of any input size (as keras-io
    MIRNet takes): the transposed convolution's output shape is computed when the model runs,
    so the tensors after it are dynamic and XNNPACK prepares them only at the first invoke,
    where it fails ("failed to create XNNPACK runtime … (TfLiteXNNPackDelegate) failed to
    prepare"); allocate_tensors succeeds."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    inputs = keras.Input((None, None, 3), name="image")
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = layers.Conv2DTranspose(8, 3, strides=2, padding="same", name="up")(x)
    return _with_dead_channel(path, inputs, x)


@pytest.mark.parametrize("build", [_refusing_model, _refusing_at_invoke_model])
def test_a_refused_artifact_is_measured_on_the_builtin_kernels_and_named(
        build: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    model = build(tmp_path / "refused.keras")
    code, report, printed = _check(capsys, tmp_path, model, "--targets", "tflite-int8")
    target = _target(report, "tflite-int8")
    assert code in (0, 1), printed  # decided by colour, not an internal error (3)
    assert target["error"] is None
    assert target["metrics"]["delta_e_mean"] is not None
    readiness = target["readiness"]
    assert readiness["coverage"]["runtime_refused"] is True
    assert "XNNPACK refused" in readiness["kernels"]["optimised"]
    runtime = [f for f in readiness["findings"] if f["kind"] == "runtime"]
    assert len(runtime) == 1, readiness["findings"]
    assert runtime[0]["op"] == "CONV_2D" and runtime[0]["layer"] == "dead_conv"
    assert isinstance(runtime[0]["node"], int)
    assert "failed to prepare" in runtime[0]["detail"]
    assert "runtime" in printed and "dead_conv" in printed
    # Both kernels were the built-in ones: nothing is attributed to the optimised kernels.
    assert readiness["kernels"]["kernels"] == pytest.approx(0.0, abs=1e-9)


def test_kernel_share_is_measurable_where_the_kernels_differ_and_zero_where_they_agree(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """ONNX Runtime's fused integer kernels (QLinearConv) round differently from the QDQ graph
    run as exported; on this model the difference is as large as the quantization's own."""
    code, report, _ = _check(capsys, tmp_path, SAMPLE["pool_after_residual"].path,
                             "--targets", "onnx-int8,tflite-fp16")
    assert code in (0, 1)
    fused = _target(report, "onnx-int8")["readiness"]["kernels"]
    assert fused["measure"] == "delta_e" and fused["images"] == 8
    assert fused["kernels"] > 0.2 and fused["kernel_share"] > 0.2, fused
    float16 = _target(report, "tflite-fp16")["readiness"]["kernels"]
    assert float16["kernels"] < 0.001 and float16["kernel_share"] == 0.0, float16


def test_kernel_split_matches_the_runtimes_run_here(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    """The reported drifts are recomputed from the artifact on both kernel sets."""
    from qcheck.compare.drift import drift_measure
    from qcheck.load import ModelFeed, bundled_images
    from qcheck.outputs import OutputKind, OutputSpec
    from qcheck.runners import KerasRunner, runner_for
    from qcheck.types import Format, InputRange

    sample = SAMPLE["healthy"]
    code, report, _ = _check(capsys, tmp_path, sample.path, "--targets", "onnx-int8")
    assert code == 0
    kernels = _target(report, "onnx-int8")["readiness"]["kernels"]
    content = next((tmp_path / "report" / "artifacts").glob("onnx-int8*")).read_bytes()
    _, evaluation = bundled_images((64, 64))
    images = np.concatenate(list(ModelFeed(evaluation, InputRange(0, 1))))[:8]
    batches = [images[i : i + 1] for i in range(len(images))]
    import keras

    with KerasRunner(keras.saving.load_model(sample.path)) as runner:
        floats = runner.infer_all(batches)
    outputs = {}
    for reference in (False, True):
        with runner_for(Format.ONNX, content, reference=reference) as runner:
            outputs[reference] = runner.infer_all(batches)
    measure = drift_measure(OutputSpec(OutputKind.IMAGE, InputRange(0, 1), 4, 3, "test"))
    assert kernels["quantization"] == pytest.approx(measure(floats, outputs[True]).mean,
                                                    rel=1e-3, abs=1e-5)
    assert kernels["kernels"] == pytest.approx(measure(outputs[True], outputs[False]).mean,
                                               rel=1e-3, abs=1e-5)


def test_latency_memory_size_and_the_io_contract(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    code, report, printed = _check(capsys, tmp_path, SAMPLE["healthy"].path,
                                   "--targets", "tflite-int8,onnx-fp16")
    assert code == 0
    for name in ("tflite-int8", "onnx-fp16"):
        readiness = _target(report, name)["readiness"]
        for threads in ("1", "2"):
            latency = readiness["latency_ms"][threads]
            assert 0 < latency["median"] <= latency["p90"] and latency["runs"] >= 5
        assert readiness["memory_mb"] >= 0
        artifact = next((tmp_path / "report" / "artifacts").glob(f"{name}*"))
        assert readiness["size_kb"] == pytest.approx(artifact.stat().st_size / 1024, abs=0.05)
    contract = _target(report, "tflite-int8")["readiness"]["io"]
    (tensor,) = contract["inputs"]
    assert tensor["dtype"] == "uint8" and tensor["shape"] == [None, 64, 64, 3]
    assert tensor["layout"] == "NHWC" and tensor["scale"] == pytest.approx(1 / 255, rel=1e-3)
    assert "pixel / 255" in tensor["feed"]
    assert "(code − " in contract["outputs"][0]["read"]
    # The artifact's exact values, not a rounded print of them (an app codes against them).
    from ai_edge_litert.interpreter import Interpreter

    artifact = Interpreter(model_content=(tmp_path / "report" / "artifacts" /
                                          "tflite-int8.tflite").read_bytes())
    exact = [artifact.get_input_details()[0], artifact.get_output_details()[0]]
    for entry, detail in zip([tensor, contract["outputs"][0]], exact, strict=True):
        assert entry["scale"] == float(np.float32(detail["quantization"][0]))
        assert entry["zero_point"] == int(detail["quantization"][1])
        assert repr(entry["scale"]) in entry.get("feed", entry.get("read"))
    assert tensor["rounding"] == "round half to even"
    float_io = _target(report, "onnx-fp16")["readiness"]["io"]
    assert float_io["inputs"][0]["dtype"] == "float32" and float_io["inputs"][0]["scale"] is None
    assert "readiness" in printed and "uint8 → uint8" in printed


def test_latency_and_size_gates_fail_a_target_by_exit_code(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, report, printed = _check(capsys, tmp_path, SAMPLE["healthy"].path,
                                   "--targets", "tflite-fp16", "--max-size-kb", "1",
                                   "--max-latency-ms", "0.000001")
    target = _target(report, "tflite-fp16")
    assert code == 1 and not target["passed"] and "size 14" in printed
    assert target["readiness"]["gate_failures"] == target["failures"]
    assert any(f.startswith("size ") for f in target["failures"])
    assert any(f.startswith("latency ") for f in target["failures"])
    code, report, _ = _check(capsys, tmp_path, SAMPLE["healthy"].path,
                             "--targets", "tflite-fp16", "--max-size-kb", "100000")
    assert code == 0


@pytest.mark.parametrize("value", ["0", "-3", "nan", "fast"])
def test_a_bad_gate_is_a_usage_error(capsys: pytest.CaptureFixture[str], value: str) -> None:
    code = main(["check", str(SAMPLE["healthy"].path), "--max-latency-ms", value])
    err = capsys.readouterr().err
    assert code == 2 and "max_latency_ms" in err.replace("-", "_") and "Traceback" not in err


def test_a_float_op_left_in_a_quantized_artifact_is_named(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A cumulative sum has no int8 kernel: the converter leaves it in float between a
    dequantize and a quantize, and readiness names it and its layer."""
    import keras
    from keras import layers, ops

    keras.utils.set_random_seed(4)
    inputs = keras.Input((32, 32, 3), name="image")
    hidden = layers.Conv2D(8, 3, padding="same", activation="relu", name="features")(inputs)
    summed = layers.Lambda(lambda t: ops.cumsum(t, axis=1) / 32.0, name="running_sum")(hidden)
    outputs = layers.Conv2D(3, 1, activation="sigmoid", name="to_rgb")(summed)
    model = keras.Model(inputs, outputs)
    from qcheck.pipeline import check

    report = check(model, targets=["tflite-int8"], analysis=False)
    readiness = report.targets[0].readiness
    assert readiness is not None
    float_ops = [f for f in readiness["findings"] if f["kind"] == "float_op"]
    assert [(f["op"], f["layer"]) for f in float_ops] == [("CUMSUM", "running_sum")]
    assert readiness["coverage"]["float_ops"] == 1


def test_no_readiness_skips_the_profile(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    code, report, printed = _check(capsys, tmp_path, SAMPLE["healthy"].path,
                                   "--targets", "tflite-fp16", "--no-readiness")
    assert code == 0 and _target(report, "tflite-fp16")["readiness"] is None
    assert "readiness (this machine" not in printed


def test_qcheck_feeds_with_the_rounding_of_the_runtimes_own_quantize(tmp_path: Path) -> None:
    """−1:1 pixels with scale 2/255 sit exactly between two int8 codes. The runtime's own
    QUANTIZE (a float-input artifact, on LiteRT's default kernels) rounds those ties as the
    contract says and as qcheck's runner feeds an integer-input artifact."""
    import keras
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from qcheck.numerics import quantize
    from qcheck.readiness.contract import FEED_ROUNDING

    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs))

    def calibration():  # type: ignore[no-untyped-def]
        for value in (-1.0, 1.0, 0.3):
            yield [np.full((1, 4, 4, 3), value, np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    interpreter = Interpreter(model_content=converter.convert(),
                              experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    quantized = next(t for t in interpreter.get_tensor_details()
                     if t["dtype"] == np.int8 and tuple(t["shape"]) == (1, 4, 4, 3))
    scale, zero_point = quantized["quantization"]
    pixels = np.arange(48, dtype=np.float32).reshape(1, 4, 4, 3) * 5
    values = pixels / 127.5 - 1
    ties = values / np.float32(scale)
    assert np.all(np.abs(ties - np.floor(ties) - 0.5) < 1e-4)  # every value is a tie
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], values)
    interpreter.invoke()
    runtime = interpreter.get_tensor(quantized["index"])
    assert FEED_ROUNDING == "round half to even"
    np.testing.assert_array_equal(quantize(values, scale, zero_point, np.dtype(np.int8)), runtime)


def test_a_warm_check_answers_readiness_from_the_cache(tmp_path: Path) -> None:
    """Everything cached: the I/O contract and the kernel split come from the cache with the
    rest, so the warm run reads no artifact's signature and imports neither onnx nor
    TensorFlow (nor matplotlib, which a cold run loads while its workers start); the figures
    are the cold run's. The cold run's process imports neither
    either: the workers that ran the artifacts read their I/O."""
    import subprocess
    import sys

    model = SAMPLE["healthy"].path
    script = (
        "import json, sys, qcheck\n"
        "if __name__ == '__main__':\n"
        f"    r = qcheck.check({str(model)!r}, targets=['onnx-int8', 'tflite-int8'],\n"
        "                     analysis=False)\n"
        "    print(json.dumps([t.readiness for t in r.targets]))\n"
        "    print('onnx' in sys.modules, 'tensorflow' in sys.modules,\n"
        "          'matplotlib' in sys.modules)\n")
    (tmp_path / "probe.py").write_text(script)
    env = {**os.environ, "QCHECK_CACHE_DIR": str(tmp_path / "cache")}
    runs = [subprocess.run([sys.executable, str(tmp_path / "probe.py")], capture_output=True,
                           text=True, timeout=600, env=env, check=False) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    cold, warm = (run.stdout.strip().splitlines() for run in runs)
    assert json.loads(warm[-2]) == json.loads(cold[-2])
    assert all(r["io"]["inputs"] for r in json.loads(warm[-2]))
    assert warm[-1] == "False False False"  # nor matplotlib: the charts are cached too
    assert cold[-1].startswith("False False")


def test_timing_stops_once_the_runs_agree_and_not_before() -> None:
    from qcheck.readiness.profile import STEADY_RUNS, _steady

    steady = [0.004] * (STEADY_RUNS - 1)
    assert not _steady(steady)  # too few runs to say
    assert _steady([*steady, 0.00401])
    noisy = [0.004, 0.006] * STEADY_RUNS  # p90 50 % above the median: keep timing
    assert not _steady(noisy)


def test_only_the_timed_profile_waits_for_the_comparisons(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """A check hands the workers the reference-kernel runs with the conversions (they are
    untimed, so they fill the lanes' gaps); the batch after the comparisons holds only the
    timed profiles, which share the processor with nothing."""
    import qcheck
    from qcheck.jobs import JobKind
    from qcheck.session import Session

    batches: list[list[JobKind]] = []
    run_jobs = Session.run_jobs

    def recorded(self: Session, jobs: Any, on_result: Any = None) -> Any:
        batches.append([job.kind for job in jobs])
        return run_jobs(self, jobs, on_result)

    monkeypatch.setattr(Session, "run_jobs", recorded)
    report = qcheck.check(SAMPLE["healthy"].path, targets=["tflite-int8", "onnx-int8"],
                          analysis=False)
    assert batches[0].count(JobKind.KERNELS) == 2 and JobKind.PROFILE not in batches[0]
    assert batches[-1] == [JobKind.PROFILE, JobKind.PROFILE]
    assert [t.readiness["kernels"]["images"] for t in report.targets] == [8, 8]
