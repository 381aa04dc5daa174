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


def test_tensor_errors_in_one_pass_match_their_definitions() -> None:
    """SQNR, largest error and non-finite share, chunk by chunk, as their formulas give them
    over the whole arrays; NaN counts as 0 and infinity as float32's largest."""
    from qcheck.compare.tensor import tensor_errors

    rng = np.random.default_rng(3)
    reference = rng.normal(0, 1, (37, 5, 4)).astype(np.float32)
    candidate = reference + rng.normal(0, 0.1, reference.shape).astype(np.float32)
    candidate[3, 0, 0], candidate[20, 1, 2] = np.nan, np.inf
    found = tensor_errors(reference, candidate, chunk=8)
    ref = reference.astype(np.float64)
    cand = np.nan_to_num(candidate.astype(np.float64), nan=0.0,
                         posinf=float(np.finfo(np.float32).max))
    expected_sqnr = 10 * np.log10(np.sum(ref**2) / np.sum((cand - ref) ** 2))
    assert found.sqnr_db == pytest.approx(expected_sqnr, rel=1e-12)
    assert found.max_abs_error == pytest.approx(np.max(np.abs(cand - ref)), rel=1e-12)
    assert found.nonfinite_fraction == 2 / reference.size
    clean = tensor_errors(reference, reference.copy())
    assert (clean.sqnr_db, clean.max_abs_error, clean.nonfinite_fraction) == (np.inf, 0.0, 0.0)
    assert tensor_errors(np.zeros((2, 3)), np.ones((2, 3))).sqnr_db == -np.inf
