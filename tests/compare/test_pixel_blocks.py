"""CIELAB and CIEDE2000 are computed a block of pixel rows at a time (for the cache); every
value is per pixel, so the results are bit for bit those of whole stacks."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import color

from qcheck.compare import pixels
from qcheck.compare.metrics import compare_outputs, reference_lab
from qcheck.outputs import OutputKind, OutputSpec
from qcheck.types import InputRange

SHAPES = [(3, 37, 53, 3), (1, 300, 450, 3), (2, 40, 40, 1), (1, 1, 90, 3)]


def _pair(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(sum(shape))
    reference = rng.random(shape, dtype=np.float32)
    noise = rng.normal(0.01, 0.04, shape).astype(np.float32)
    return reference, np.clip(reference + noise, -0.1, 1.1).astype(np.float32)


@pytest.mark.parametrize("shape", SHAPES)
def test_blocks_give_scikit_images_values_for_whole_stacks(shape: tuple[int, ...],
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    reference, candidate = _pair(shape)
    unit = np.clip(candidate, 0.0, 1.0)
    whole_lab = color.rgb2lab(pixels.as_rgb(unit), channel_axis=-1).astype(np.float32)
    reference_whole = color.rgb2lab(pixels.as_rgb(reference), channel_axis=-1
                                    ).astype(np.float32)
    whole_delta_e = color.deltaE_ciede2000(reference_whole, whole_lab, channel_axis=-1
                                           ).astype(np.float32)
    monkeypatch.setattr(pixels, "BLOCK_PIXELS", 100)  # rows one or two at a time
    blocked = pixels.colour_pixels(reference, unit)
    assert blocked.lab_candidate.tobytes() == whole_lab.tobytes()
    assert blocked.lab_reference.tobytes() == reference_whole.tobytes()
    assert blocked.delta_e.tobytes() == whole_delta_e.tobytes()


@pytest.mark.parametrize("shape", SHAPES)
def test_the_metrics_do_not_depend_on_the_block(shape: tuple[int, ...],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    reference, candidate = _pair(shape)
    output = OutputSpec(OutputKind.IMAGE, InputRange(-1.0, 1.0), 4, shape[-1], "out")

    def compared() -> str:
        lab = reference_lab(reference, output.range) if shape[-1] == 3 else None
        result = compare_outputs(reference, candidate, output, clipped_fraction=0.0,
                                 lab_reference=lab)
        assert result.delta_e is not None
        return repr((result.metrics, result.artifacts_seen, result.delta_e.tobytes()))

    whole = compared()
    monkeypatch.setattr(pixels, "BLOCK_PIXELS", 700)
    assert compared() == whole


def test_chunks_measured_two_at_a_time_fold_as_one_thread_would(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from qcheck.compare import metrics

    reference, candidate = _pair((7, 48, 40, 3))
    output = OutputSpec(OutputKind.IMAGE, InputRange(0.0, 1.0), 4, 3, "out")

    def compared() -> str:
        result = compare_outputs(reference, candidate, output, clipped_fraction=0.0, chunk=2)
        assert result.delta_e is not None
        return repr((result.metrics, result.artifacts_seen, result.delta_e.tobytes()))

    two_at_a_time = compared()
    monkeypatch.setattr(metrics, "PARALLEL_CHUNK_PIXELS", 0)  # one chunk at a time
    assert compared() == two_at_a_time


@pytest.mark.parametrize("output_range", [InputRange(0.0, 1.0), InputRange(-1.0, 1.0),
                                          InputRange(0.0, 255.0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unit_rgb_maps_broken_values_as_nan_to_num_then_clip(output_range: InputRange,
                                                             dtype: type) -> None:
    rng = np.random.default_rng(3)
    outputs = (rng.random((2, 9, 11, 3)) * 1.4 - 0.2) * output_range.span + output_range.low
    outputs.flat[:7] = [np.nan, np.inf, -np.inf, -0.0, output_range.low, output_range.high,
                        np.nan]
    outputs = outputs.astype(dtype)
    with np.errstate(invalid="ignore"):
        scaled = (np.asarray(outputs, np.float32) - output_range.low) / output_range.span
    expected = np.clip(np.nan_to_num(scaled, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0
                       ).astype(np.float32)
    unit = pixels.to_unit_rgb(outputs, output_range)
    assert unit.dtype == np.float32
    assert unit.tobytes() == expected.tobytes()
    assert list(unit.flat[:3]) == [0.0, 1.0, 0.0]  # NaN, +inf, -inf
    assert np.isfinite(outputs.flat[7:]).all()  # the input is not written to
