"""``compare_outputs``: what production runs on every target's raw outputs."""

from __future__ import annotations

import numpy as np
import pytest

from qcheck.compare.color import compare_colour
from qcheck.compare.metrics import compare_outputs
from qcheck.outputs import OutputKind, OutputSpec
from qcheck.types import ArtifactKind, InputRange


def _outputs(seed: int, count: int = 5, size: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = rng.uniform(-0.9, 0.9, size=(count, size, size, 3)).astype(np.float32)
    candidate = np.clip(reference + rng.normal(0, 0.02, reference.shape), -1, 1)
    return reference, candidate.astype(np.float32)


def test_image_outputs_are_read_in_the_output_range_and_match_compare_colour() -> None:
    reference, candidate = _outputs(0)
    signed = InputRange.parse("-1:1")
    result = compare_outputs(reference, candidate, _image(signed), clipped_fraction=0.0)
    direct = compare_colour((reference + 1) / 2, (candidate + 1) / 2)
    metrics = result.metrics
    assert metrics.delta_e_mean == pytest.approx(direct.delta_e_mean, rel=1e-6)
    assert metrics.delta_e_p95 == pytest.approx(direct.delta_e_p95, rel=1e-6)
    assert metrics.psnr_db == pytest.approx(direct.psnr_db, rel=1e-6)
    assert direct.channel_bias is not None and metrics.channel_bias is not None
    for channel in "rgb":
        assert metrics.channel_bias[channel] == pytest.approx(direct.channel_bias[channel],
                                                              abs=1e-6)
    assert result.delta_e is not None and result.delta_e.shape == reference.shape[:3]


def test_chunking_does_not_change_the_numbers() -> None:
    reference, candidate = _outputs(1, count=7)
    unit = InputRange.parse("-1:1")
    whole = compare_outputs(reference, candidate, _image(unit), clipped_fraction=0.0,
                            chunk=16).metrics
    pieces = compare_outputs(reference, candidate, _image(unit), clipped_fraction=0.0,
                             chunk=2).metrics
    assert pieces.delta_e_mean == pytest.approx(whole.delta_e_mean, rel=1e-6)
    assert pieces.delta_e_p95 == whole.delta_e_p95
    assert pieces.ssim == pytest.approx(whole.ssim, rel=1e-9)
    assert pieces.chroma_share == pytest.approx(whole.chroma_share, rel=1e-6)


def test_tensor_outputs_get_tensor_metrics_and_no_colour() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(20, 5)).astype(np.float32)
    flipped = logits.copy()
    flipped[0] = -flipped[0]  # one sample's arg-max changes
    result = compare_outputs(logits, flipped, _classifier(), clipped_fraction=0.25)
    metrics = result.metrics
    assert metrics.delta_e_mean is None and metrics.channel_bias is None
    assert metrics.top1_agreement == pytest.approx(19 / 20)
    assert metrics.max_abs_error == pytest.approx(float(np.abs(2 * logits[0]).max()), rel=1e-6)
    assert metrics.sqnr_db is not None and np.isfinite(metrics.sqnr_db)
    assert metrics.clipped_fraction == 0.25
    assert result.artifacts_seen == () and result.delta_e is None


def test_out_of_range_values_are_called_clipping() -> None:
    reference, candidate = _outputs(3)
    unit = InputRange.parse("-1:1")
    quiet = compare_outputs(reference, candidate, _image(unit), clipped_fraction=0.0)
    clipped = compare_outputs(reference, candidate, _image(unit), clipped_fraction=0.05)
    assert ArtifactKind.CLIPPING not in quiet.artifacts_seen
    assert ArtifactKind.CLIPPING in clipped.artifacts_seen


def test_a_shape_mismatch_is_refused() -> None:
    reference, candidate = _outputs(4)
    with pytest.raises(ValueError, match="differs"):
        compare_outputs(reference, candidate[:, :-1], _image(InputRange.parse("0:1")),
                        clipped_fraction=0.0)


def _image(value_range: InputRange) -> OutputSpec:
    return OutputSpec(OutputKind.IMAGE, value_range, 4, 3, "an RGB image")


def _classifier() -> OutputSpec:
    return OutputSpec(OutputKind.CLASSES, InputRange.parse("0:1"), 2, 5, "a classifier")
