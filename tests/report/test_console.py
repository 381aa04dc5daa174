"""The console summary shows what each kind of output is judged by."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import converters
from qcheck.limits import Thresholds
from qcheck.report.console import print_summary
from qcheck.report.data import ReportData
from qcheck.results import Metrics, TargetResult
from qcheck.types import ImageSummary, ModelInfo, TensorInfo


def _printed(metrics: Metrics) -> str:
    info = ModelInfo("m.keras", "0" * 64, (TensorInfo("x", (None, 8, 8, 3), "float32"),),
                     (TensorInfo("y", (None, 8, 8, 3), "float32"),))
    target = TargetResult(converters.TARGETS["tflite-int8"], passed=False, metrics=metrics)
    report = ReportData(info, ImageSummary(4, 4, "test"), Thresholds(), (target,))
    buffer = io.StringIO()
    print_summary(report, Console(file=buffer, width=160, highlight=False))
    return buffer.getvalue()


@pytest.mark.parametrize(("metrics", "shown", "hidden"), [
    (Metrics(delta_e_mean=1.234, delta_e_p95=4.5, channel_bias={"r": 0.5, "g": -0.2, "b": 1.0},
             sqnr_db=30.0), ["ΔE mean", "1.23", "+0.5/-0.2/+1.0"], ["SQNR"]),
    (Metrics(delta_l_mean=0.812, delta_l_p95=2.5, psnr_db=41.0, sqnr_db=30.0),
     ["ΔL* mean", "0.81", "ΔL* p95", "2.50"], ["ΔE mean"]),
    (Metrics(class_agreement=0.9876, miou=0.955, sqnr_db=22.0),
     ["class agreement", "98.8%", "mIoU", "0.955"], ["ΔE mean"]),
    (Metrics(top1_agreement=0.97, sqnr_db=25.5, max_abs_error=0.2),
     ["top-1 agreement", "97.0%", "25.5"], ["ΔE mean"]),
])
def test_each_output_kind_shows_what_it_is_judged_by(metrics: Metrics, shown: list[str],
                                                     hidden: list[str]) -> None:
    printed = _printed(metrics)
    for text in shown:
        assert text in printed, printed
    for text in hidden:
        assert text not in printed, printed


def test_the_page_groups_readiness_findings_per_layer_and_op() -> None:
    """One instance norm's 26 float NEG/SQUARE nodes are two collapsed rows; a runtime
    refusal stays in view."""
    from qcheck.report.html import render_html

    info = ModelInfo("m.keras", "0" * 64, (TensorInfo("x", (None, 8, 8, 3), "float32"),),
                     (TensorInfo("y", (None, 8, 8, 3), "float32"),))
    issues = [{"kind": "float_op", "node": i, "op": "NEG" if i % 2 else "SQUARE",
               "layer": "group_normalization", "detail": "runs in float32"} for i in range(26)]
    issues.append({"kind": "runtime", "node": 40, "op": "CONV_2D", "layer": "conv2d",
                   "detail": "XNNPACK refused it"})
    target = TargetResult(converters.TARGETS["tflite-int8"], passed=True,
                          metrics=Metrics(delta_e_mean=0.5, delta_e_p95=1.0),
                          readiness={
                              "kernels": {"images": 8, "measure": "delta_e",
                                          "quantization": 1.0, "kernels": 0.5,
                                          "kernel_share": 0.3},
                              "latency_ms": {"1": {"median": 0.6}, "2": {"median": 0.5}},
                              "memory_mb": 1.0, "size_kb": 55.8, "gate_failures": [],
                              "coverage": {"float_ops": 26, "gpu_incompatible_ops": 0},
                              "io": {"inputs": [], "outputs": []},
                              "findings": issues})
    page = render_html(ReportData(info, ImageSummary(4, 4, "test"), Thresholds(), (target,)))
    ops = page[page.index('<details class="readiness-ops">'):]
    ops = ops[:ops.index("</details>")]
    assert ops.count("<tr>") == 3  # the header and one row per op of the layer
    assert "26 nodes" in ops and "<code>NEG</code>" in ops and "<code>SQUARE</code>" in ops
    assert page.index("XNNPACK refused it") < page.index('<details class="readiness-ops">')
