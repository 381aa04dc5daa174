"""TFLite calibration ranges recorded as TensorFlow's calibrator records them, in a fraction
of its time.

TensorFlow's calibrator wraps every op of the float model: it logs each float tensor the op
reads (before and again after the op runs) and each it writes, and folds every element into a
running min and max one at a time. On a MobileNetV2-style model that loop is 2.2 of the
calibration's 2.7 s, and it sits on the TensorFlow lane's critical path. This module runs the
same model on the same kernels (TensorFlow's own TFLite interpreter, built as the calibrator
builds it: the built-in kernels without delegates, the default thread count) with every tensor
kept, and reduces each tensor once with numpy, then writes the ranges where the calibrator
writes them. It reproduces the calibrator's quirks that reach the ranges:

- a range starts at (FLT_MAX, FLT_MIN), so a tensor that is never positive records the
  smallest positive float as its maximum;
- ties keep the first element logged, so a minimum of zero keeps that element's sign;
- an op that writes its output over an input's memory (TFLite's in-place ops) has that input
  logged again after it ran, so the input's range takes in the output's values.

A model it cannot match exactly (several subgraphs, variables, custom ops, LSTM intermediates,
samples by signature, a NaN, inputs of changing shape) goes to TensorFlow's own calibrator; the
artifacts are byte for byte the converter's own (``tests/converters/test_calibration_ranges.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from converters.tflite_edit import edited

__all__ = ["ranges_as_tflite_calibrates", "tflite_calibration_ranges"]

# What TensorFlow's MinMax starts from (std::numeric_limits<float>::max() and ::min()).
_START_MIN = np.finfo(np.float32).max
_START_MAX = np.finfo(np.float32).tiny
_FLOAT32 = 0  # TensorType.FLOAT32 in TFLite's schema
_LSTM_INPUTS = 24  # the calibrator logs an op with this many inputs through its LSTM kernel
_DEFAULT_THREADS = -1  # what the calibrator's interpreter is built with


class _Unmatched(Exception):
    """This model or these samples need TensorFlow's own calibrator to be matched exactly."""


@dataclass
class _LoggedOp:
    inputs: list[int]
    outputs: list[int]
    # input -> the output written over its memory, as logged after the op ran
    overwritten_by: dict[int, int] = field(default_factory=dict)


@contextlib.contextmanager
def ranges_as_tflite_calibrates() -> Iterator[None]:
    """While converting, TensorFlow's calibrate step (``Calibrator.calibrate``) records its
    ranges through :func:`tflite_calibration_ranges`, falling back to its own code."""
    from tensorflow.lite.python.optimize import calibrator

    original = calibrator.Calibrator.calibrate

    def calibrate(self: Any, dataset_gen: Callable[[], Iterator[Any]]) -> bytes:
        try:
            return tflite_calibration_ranges(self._model_content, dataset_gen)
        except _Unmatched:
            return original(self, dataset_gen)

    calibrator.Calibrator.calibrate = calibrate
    try:
        yield
    finally:
        calibrator.Calibrator.calibrate = original


def tflite_calibration_ranges(model: bytes, samples: Callable[[], Iterator[Any]]) -> bytes:
    """``model`` with each logged tensor's calibrated min and max recorded, as TensorFlow's
    ``Calibrator.calibrate(samples)`` returns it. Raises ``_Unmatched`` where only TensorFlow's
    calibrator would match."""
    from ai_edge_litert import schema_py_generated as schema

    ops = _logged_ops(schema.Model.GetRootAs(model, 0))
    kept = _interpreter(model, keep_every_tensor=True)
    ranges: dict[int, tuple[np.float32, np.float32]] = {}
    shapes: list[tuple[int, ...]] | None = None
    for sample in samples():
        if shapes is None:  # sized by the first sample, as the calibrator sizes its own
            shapes = _shapes(sample)
            plain = _interpreter(model, keep_every_tensor=False)
            _prepare(plain, shapes)
            _run(plain, sample)
            _mark_overwritten(ops, plain)
            _prepare(kept, shapes)
        elif _shapes(sample) != shapes:
            raise _Unmatched
        _run(kept, sample)
        _fold(ranges, ops, kept)
    if shapes is None:
        raise _Unmatched  # no samples: the calibrator records nothing and fails; let it

    def record(tree: Any) -> None:  # what the calibrator's AddCalibrationToModel writes
        tensors = tree.subgraphs[0].tensors
        for index, (low, high) in ranges.items():
            tensors[index].quantization = schema.QuantizationParametersT()
            tensors[index].quantization.min = [float(low)]
            tensors[index].quantization.max = [float(high)]

    return edited(model, record)


def _logged_ops(root: Any) -> list[_LoggedOp]:
    """The ops in execution order with the tensors the calibrator logs for each: float
    tensors without constant data."""
    if root.SubgraphsLength() != 1:
        raise _Unmatched
    if any(root.OperatorCodes(i).CustomCode() is not None
           for i in range(root.OperatorCodesLength())):
        raise _Unmatched
    graph = root.Subgraphs(0)

    def loggable(indices: Any) -> list[int]:
        logged = []
        for index in (int(i) for i in indices):
            if index < 0:
                continue
            tensor = graph.Tensors(index)
            if tensor.IsVariable():
                raise _Unmatched
            buffer = root.Buffers(tensor.Buffer())
            if tensor.Type() == _FLOAT32 and (buffer is None or buffer.DataLength() == 0):
                logged.append(index)
        return logged

    ops = []
    for position in range(graph.OperatorsLength()):
        op = graph.Operators(position)
        if op.InputsLength() == _LSTM_INPUTS or op.IntermediatesLength():
            raise _Unmatched
        ops.append(_LoggedOp(loggable(op.InputsAsNumpy()), loggable(op.OutputsAsNumpy())))
    return ops


def _interpreter(model: bytes, *, keep_every_tensor: bool) -> Any:
    """TensorFlow's TFLite interpreter as its calibrator builds one (built-in kernels, no
    delegates, the default thread count, which the Python class cannot ask for)."""
    from tensorflow.lite.python.interpreter import OpResolverType
    from tensorflow.lite.python.interpreter_wrapper import (
        _pywrap_tensorflow_interpreter_wrapper as wrapper,
    )

    try:
        return wrapper.CreateWrapperFromBuffer(
            model, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES.value, [], [],
            keep_every_tensor, False, _DEFAULT_THREADS, False)
    except Exception as exc:  # this TensorFlow's wrapper differs: use its calibrator
        raise _Unmatched from exc


def _shapes(sample: Any) -> list[tuple[int, ...]]:
    """The sample's input shapes, for samples as qcheck hands them over: a list of float32
    arrays."""
    if not isinstance(sample, list) or any(
            not isinstance(part, np.ndarray) or part.dtype != np.float32 for part in sample):
        raise _Unmatched
    return [part.shape for part in sample]


def _prepare(interpreter: Any, shapes: list[tuple[int, ...]]) -> None:
    """Sized for the samples as the calibrator sizes its interpreter (strictly: only the
    dimensions the model leaves open)."""
    inputs = list(interpreter.InputIndices())
    if len(inputs) != len(shapes):
        raise _Unmatched
    try:
        for index, shape in zip(inputs, shapes, strict=True):
            interpreter.ResizeInputTensor(index, np.array(shape, np.int32), True)
        interpreter.AllocateTensors()
        interpreter.ResetVariableTensors()
    except Exception as exc:  # TensorFlow's calibrator reports what fails, in its words
        raise _Unmatched from exc


def _run(interpreter: Any, sample: list[np.ndarray]) -> None:
    try:
        for index, part in zip(interpreter.InputIndices(), sample, strict=True):
            interpreter.SetTensor(index, part)
        interpreter.Invoke()
    except Exception as exc:  # TensorFlow's calibrator reports what fails, in its words
        raise _Unmatched from exc


def _mark_overwritten(ops: list[_LoggedOp], plain: Any) -> None:
    """Which inputs an op overwrites with its output, read from where an interpreter that
    keeps only live tensors (as the calibrator's does) placed them once it ran (a tensor
    whose shape is known only then is placed then)."""

    def span(index: int) -> tuple[int, int]:
        try:
            view = plain.tensor(plain, index)
        except Exception as exc:  # no memory to read: let TensorFlow's calibrator decide
            raise _Unmatched from exc
        return view.ctypes.data, view.nbytes

    for op in ops:
        for source in op.inputs:
            start, size = span(source)
            for target in op.outputs:
                other, other_size = span(target)
                if size and other_size and start < other + other_size and other < start + size:
                    if (start, size) != (other, other_size) or source in op.overwritten_by:
                        raise _Unmatched
                    op.overwritten_by[source] = target


def _fold(ranges: dict[int, tuple[np.float32, np.float32]], ops: list[_LoggedOp],
          interpreter: Any) -> None:
    """One sample's logs, in the calibrator's order: each op's inputs before and after it
    ran, then its outputs."""
    seen: dict[int, tuple[np.float32, np.float32]] = {}

    def extremes(index: int) -> tuple[np.float32, np.float32]:
        if index not in seen:
            seen[index] = _extremes(interpreter.tensor(interpreter, index))
        return seen[index]

    def log(index: int, values: tuple[np.float32, np.float32]) -> None:
        low, high = ranges.get(index, (_START_MIN, _START_MAX))
        ranges[index] = (values[0] if values[0] < low else low,
                         values[1] if high < values[1] else high)

    for op in ops:
        for index in op.inputs:
            log(index, extremes(index))
        for index in op.inputs:
            log(index, extremes(op.overwritten_by.get(index, index)))
        for index in op.outputs:
            log(index, extremes(index))


def _extremes(values: np.ndarray) -> tuple[np.float32, np.float32]:
    """The first smallest and first largest element (the sign of a zero is the first
    zero's)."""
    flat = values.reshape(-1)
    if flat.size == 0:
        raise _Unmatched  # the calibrator records no range for it and fails; let it
    low, high = flat.min(), flat.max()
    if np.isnan(low) or np.isnan(high):
        raise _Unmatched  # TensorFlow's calibrator skips NaNs and warns; let it
    if low == 0:
        low = flat[int(np.argmin(flat))]
    return np.float32(low), np.float32(high)
