"""What each sample model is, the input range it expects, and its documented verdicts.

The verdicts are measured (see README.md here); ``tests/test_sample_models.py`` checks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SampleModel:
    name: str
    input_range: str
    demonstrates: str
    # target name -> whether it passes the default thresholds
    verdicts: dict[str, bool]

    @property
    def path(self) -> Path:
        return HERE / f"{self.name}.keras"


SAMPLES: tuple[SampleModel, ...] = (
    SampleModel("healthy", "0:1", "normalized input, full convolutions that mix channels",
                {"tflite-int8": True, "tflite-int8-per-tensor": True, "onnx-int8": True,
                 "tflite-fp16": True, "onnx-fp16": True}),
    SampleModel("unnormalized_input", "0:255", "raw 0–255 input with no normalization layer",
                {"tflite-int8": True, "onnx-int8": True}),
    SampleModel("pool_after_residual", "0:1", "residual adds feeding straight into pooling",
                {"tflite-int8": True, "onnx-int8": True}),
    SampleModel("depthwise_rgb", "0:1",
                "depthwise filters on R, G, B separately; only 3 pointwise filters",
                {"tflite-int8": True, "onnx-int8": True}),
    SampleModel("per_tensor_trap", "0:1",
                "depthwise weights differing across channels by orders of magnitude",
                {"tflite-int8": True, "tflite-int8-per-tensor": False, "onnx-int8": True,
                 "onnx-int8-per-tensor": False}),
    SampleModel("two_traps", "0:1",
                "two far-apart layers fed a dead channel through huge weights: no single fix "
                "passes, `qcheck plan` finds the two-layer recipe",
                {"tflite-int8": False, "onnx-int8": False}),
    SampleModel("segmentation", "0:1",
                "a 3-class softmax per pixel: a class map, compared by class agreement",
                {"tflite-int8": True, "tflite-int8-per-tensor": True, "onnx-int8": True}),
    SampleModel("signed_sigmoid", "-1:1",
                "fed −1:1, answering through a sigmoid in 0:1 (output read in 0:1)",
                {"tflite-int8": True, "tflite-int8-per-tensor": True, "onnx-int8": True,
                 "tflite-fp16": True}),
)

DEMO_TARGETS = ("tflite-fp16", "tflite-int8", "tflite-int8-per-tensor", "onnx-fp16", "onnx-int8",
                "onnx-int8-per-tensor")
