"""ONNX targets: tf2onnx for float, onnxconverter-common for float16, ONNX Runtime for int8."""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import inspect
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from converters.errors import ConversionError, first_line
from converters.naming import matching_names, onnx_node_names
from converters.options import ConversionOptions
from converters.quiet import native_quiet
from converters.source import (
    INPUT_NAME,
    CalibrationSamples,
    ConversionSource,
    calibration_digest,
)
from converters.types import Precision, TargetSpec

__all__ = ["convert_onnx", "onnx_recipe", "waiting_without_spinning"]


def convert_onnx(spec: TargetSpec, source: ConversionSource,
                 calibration: CalibrationSamples | None,
                 options: ConversionOptions | None = None) -> bytes:
    try:
        with native_quiet():
            float_model = source.onnx_float
    except Exception as exc:  # tf2onnx raises many types; all are a failed export.
        raise ConversionError(f"{spec.name}: ONNX export failed: {first_line(exc)}") from None
    if spec.precision is Precision.FP32:
        return float_model
    if spec.precision is Precision.FP16:
        return _to_float16(spec, float_model)
    if spec.precision is Precision.INT8:
        if calibration is None:
            raise ConversionError(f"{spec.name} needs calibration images")
        return _quantize_qdq(spec, float_model, calibration, options or ConversionOptions())
    raise ConversionError(f"{spec.name}: precision {spec.precision.value} has no ONNX converter")


def _to_float16(spec: TargetSpec, float_model: bytes) -> bytes:
    import onnx
    from onnxconverter_common import float16

    try:
        proto = onnx.load_from_string(float_model)
        with native_quiet():  # it warns about every weight it clamps
            half = float16.convert_float_to_float16(proto, keep_io_types=True)
        return bytes(half.SerializeToString())
    except Exception as exc:
        raise ConversionError(
            f"{spec.name}: float16 conversion failed: {first_line(exc)}") from None


class _SampleReader:
    """ONNX Runtime's CalibrationDataReader protocol over qcheck's shared samples."""

    def __init__(self, samples: Iterator[Any], input_name: str = INPUT_NAME):
        self._samples = samples
        self._input_name = input_name  # a one-input model's input, however the export names it

    def get_next(self) -> dict[str, np.ndarray] | None:
        sample = next(self._samples, None)
        if sample is None:
            return None
        # A model with several inputs is fed by the names its export keeps.
        return dict(sample) if isinstance(sample, dict) else {self._input_name: sample}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return iter(self.get_next, None)


def _quantize_qdq(spec: TargetSpec, float_model: bytes, calibration: CalibrationSamples,
                  options: ConversionOptions) -> bytes:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    proto = onnx.load_from_string(float_model)
    excluded = _nodes_of(options.keep_float, proto)
    if options.keep_float and not excluded:
        raise ConversionError(f"{spec.name}: no ONNX nodes belong to "
                              f"{', '.join(options.keep_float)}")
    extra: dict[str, object] = {}
    activation = QuantType.QUInt16 if options.int16_activations else QuantType.QUInt8
    if options.int16_activations or options.int16_layers:
        # 16-bit QDQ needs the com.microsoft QuantizeLinear at this opset.
        extra["UseQDQContribOps"] = True
    if options.int16_layers:
        extra["TensorQuantOverrides"] = _wide_overrides(spec, proto, options, activation)
    with tempfile.TemporaryDirectory(prefix="qcheck-ort-") as tmp:
        source_path = Path(tmp) / "float.onnx"
        target_path = Path(tmp) / "int8.onnx"
        source_path.write_bytes(float_model)
        try:
            with native_quiet(), _calibration_without_spinning():
                quantize_static(
                    str(source_path), str(target_path),
                    _SampleReader(calibration(), _first_input(proto)),
                    quant_format=QuantFormat.QDQ, per_channel=spec.per_channel,
                    activation_type=activation, weight_type=QuantType.QInt8,
                    nodes_to_exclude=excluded,
                    calibrate_method=methods[options.calibration_method],
                    extra_options=extra,
                    **_calibration_cache(float_model, calibration, options, activation),
                )
        except Exception as exc:
            raise ConversionError(f"{spec.name}: ONNX Runtime quantization failed: "
                                  f"{first_line(exc)}") from None
        return target_path.read_bytes()


@contextlib.contextmanager
def _calibration_without_spinning() -> Iterator[None]:
    """ONNX Runtime's calibrator makes its own session, whose threads spin while they wait
    (its default), and offers no option for it. While it runs, the sessions it makes wait
    without spinning: the ranges are the same (tested), and the other lane's conversion gets
    the core the spinning took."""
    from onnxruntime.quantization import calibrate

    runtime: Any = getattr(calibrate, "onnxruntime", None)  # how this ONNX Runtime's calibrator
    original = getattr(runtime, "SessionOptions", None)  # makes its sessions, if it does
    if original is None:
        yield
        return

    def options() -> Any:
        return waiting_without_spinning(original())

    runtime.SessionOptions = options
    try:
        yield
    finally:
        runtime.SessionOptions = original


def waiting_without_spinning(options: Any) -> Any:
    """ONNX Runtime ``SessionOptions`` whose worker threads sleep while they wait instead of
    spinning (its default): qcheck's two workers share the cores, and a spinning pool takes
    the one the other worker's conversion needs. The outputs are the same either way."""
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _first_input(model: Any) -> str:
    constants = {init.name for init in model.graph.initializer}
    return next(i.name for i in model.graph.input if i.name not in constants)


def _calibration_cache(float_model: bytes, calibration: CalibrationSamples,
                       options: ConversionOptions, activation: object) -> dict[str, object]:
    """ONNX Runtime's calibration cache (1.32 and later), one file per model, calibration
    content, method and activation type: the ranges are computed once and every artifact
    built from them (the per-layer builds attribution measures) reuses them. Older ONNX
    Runtimes calibrate each time."""
    folder = calibration_folder()
    if folder is None:
        return {}
    key = hashlib.sha256(float_model).hexdigest()[:16] + calibration_digest(calibration)[:16]
    return {"calibration_cache_path":
            str(folder / f"{key}-{options.calibration_method}-{activation}.json")}


@functools.cache
def calibration_folder() -> Path | None:
    """This process's folder of ONNX Runtime calibration caches (removed at exit); None when
    ONNX Runtime takes no cache."""
    from onnxruntime.quantization import quantize_static

    if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
        return None
    folder = Path(tempfile.mkdtemp(prefix="qcheck-ort-calibration-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def onnx_recipe(float_model: bytes, options: ConversionOptions) -> dict[str, object]:
    """What ``options`` ask of ONNX Runtime's quantizer, under its own names:
    ``nodes_to_exclude`` and the initial ``TensorQuantOverrides`` (before ONNX Runtime's
    mixed-precision fixer adds the conversions around them)."""
    import onnx

    proto = onnx.load_from_string(float_model)
    wide = {name: [{"quant_type": "QUInt16"}] for name in _outputs_of(options.int16_layers, proto)}
    return {"nodes_to_exclude": _nodes_of(options.keep_float, proto),
            "TensorQuantOverrides": wide}


def _wide_overrides(spec: TargetSpec, proto: object, options: ConversionOptions,
                    activation: object) -> dict[str, object]:
    """16-bit activations on the outputs of ``options.int16_layers``, with the conversions
    ONNX Runtime's mixed-precision fixer adds so that every op sees one type on its inputs."""
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.execution_providers.qnn.mixed_precision_overrides_utils import (
        MixedPrecisionTensorQuantOverridesFixer,
    )
    from onnxruntime.quantization.tensor_quant_overrides import TensorQuantOverridesHelper

    outputs = _outputs_of(options.int16_layers, proto)
    if not outputs:
        raise ConversionError(f"{spec.name}: no ONNX nodes belong to "
                              f"{', '.join(options.int16_layers)}")
    helper = TensorQuantOverridesHelper({name: [{"quant_type": QuantType.QUInt16}]
                                         for name in outputs})
    fixer = MixedPrecisionTensorQuantOverridesFixer.create_from_model(helper, proto, activation)
    fixer.apply(activation, False)
    return dict(helper.get_dict())


def _outputs_of(layers: tuple[str, ...], model: object) -> list[str]:
    """The activation outputs of the ONNX nodes that belong to Keras ``layers``."""
    graph = model.graph  # type: ignore[attr-defined]
    wanted = set(_nodes_of(layers, model))
    return [output for node in graph.node if node.name in wanted for output in node.output]


def _nodes_of(layers: tuple[str, ...], model: object) -> list[str]:
    """ONNX nodes that belong to Keras ``layers``: by name, output or constant input.

    tf2onnx renames some nodes (``Conv__25``) but their weights and outputs keep the scope.
    """
    if not layers:
        return []
    graph = model.graph  # type: ignore[attr-defined]
    constants = {init.name for init in graph.initializer}
    found = []
    for node in graph.node:
        if matching_names(layers, onnx_node_names(node, constants)):
            found.append(node.name)
    return found
