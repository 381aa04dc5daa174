"""Each artifact rule fires on a constructed case and stays quiet on a clean one."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from qcheck.compare.artifacts import artifact_stats, detect_artifacts
from qcheck.compare.color import compare_colour
from qcheck.compare.pixels import colour_pixels
from qcheck.load.bundled import bundled_images
from qcheck.types import ArtifactKind


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    _, evaluation = bundled_images((64, 64))
    return evaluation.pixels.astype(np.float64)


def _seen(reference: np.ndarray, candidate: np.ndarray, clipped: float = 0.0) -> set[ArtifactKind]:
    return set(detect_artifacts(compare_colour(reference, np.clip(candidate, 0, 1)), clipped))


def test_clean_output_shows_no_artifact(photos: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    noisy = photos + rng.normal(0, 0.3 / 255, photos.shape)
    assert _seen(photos, photos) == set()
    assert _seen(photos, noisy) == set()


def test_tint_fires_on_a_systematic_channel_shift(photos: np.ndarray) -> None:
    reference = 0.1 + 0.8 * photos  # keep the shift away from the ends of the range
    tinted = reference.copy()
    tinted[..., 2] += 4 / 255
    assert _seen(reference, tinted) == {ArtifactKind.TINT}


def test_tint_stays_quiet_on_zero_mean_noise(photos: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    noisy = photos + rng.normal(0, 3 / 255, photos.shape)
    assert ArtifactKind.TINT not in _seen(photos, noisy)


def _blocks(size: int = 64, cell: int = 16) -> np.ndarray:
    """Flat grey blocks: sharp edges, nothing else."""
    rng = np.random.default_rng(2)
    levels = rng.uniform(0.15, 0.85, size=(4, size // cell, size // cell))
    grey = np.kron(levels, np.ones((cell, cell)))
    return np.repeat(grey[..., np.newaxis], 3, axis=-1)


def test_fringing_fires_on_chroma_error_at_edges() -> None:
    reference = _blocks()
    grey = reference[..., 0]
    edges = np.hypot(ndimage.sobel(grey, axis=1), ndimage.sobel(grey, axis=2)) > 0.05
    fringed = reference.copy()
    fringed[..., 0] += np.where(edges, 12 / 255, 0)
    fringed[..., 2] -= np.where(edges, 12 / 255, 0)
    seen = _seen(reference, fringed)
    assert ArtifactKind.FRINGING in seen
    assert ArtifactKind.TINT not in seen


def test_fringing_stays_quiet_when_chroma_error_is_everywhere() -> None:
    reference = _blocks()
    shifted = reference.copy()
    shifted[..., 0] += 6 / 255
    assert ArtifactKind.FRINGING not in _seen(reference, shifted)


def test_speckle_fires_on_isolated_strong_chroma_errors(photos: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    speckled = photos.copy()
    mask = rng.random(photos.shape[:3]) < 0.01
    speckled[..., 1] += np.where(mask, 40 / 255, 0)
    speckled[..., 0] -= np.where(mask, 40 / 255, 0)
    seen = _seen(photos, speckled)
    assert ArtifactKind.SPECKLE in seen
    assert ArtifactKind.TINT not in seen


def test_speckle_stays_quiet_on_broad_error(photos: np.ndarray) -> None:
    broad = photos.copy()
    broad[:, :32, :32, 1] += 20 / 255  # a whole quadrant: large, but not isolated
    assert ArtifactKind.SPECKLE not in _seen(photos, broad)


def _ramps(size: int = 64) -> np.ndarray:
    ramp = np.linspace(0.2, 0.8, size)
    plane = np.tile(ramp, (size, 1))
    colours = np.array([[1.0, 0.9, 0.8], [0.7, 0.8, 1.0], [0.9, 0.9, 0.9]])
    return np.stack([plane[..., np.newaxis] * c for c in colours])


def test_banding_fires_when_a_gradient_becomes_steps() -> None:
    reference = _ramps()
    posterized = np.round(reference * 32) / 32  # 8-level steps of the 8-bit scale
    assert ArtifactKind.BANDING in _seen(reference, posterized)


def test_banding_stays_quiet_on_noise_over_a_gradient() -> None:
    reference = _ramps()
    rng = np.random.default_rng(4)
    noisy = reference + rng.normal(0, 0.6 / 255, reference.shape)
    assert ArtifactKind.BANDING not in _seen(reference, noisy)


def test_clipping_fires_when_values_saturate(photos: np.ndarray) -> None:
    reference = 0.5 + 0.45 * photos
    boosted = reference * 1.25
    assert ArtifactKind.CLIPPING in _seen(reference, boosted)


def test_clipping_fires_on_out_of_range_evaluation_values(photos: np.ndarray) -> None:
    assert ArtifactKind.CLIPPING in _seen(photos, photos, clipped=0.05)
    assert ArtifactKind.CLIPPING not in _seen(photos, photos, clipped=0.001)


def _banding_and_clipping_on_float_levels(reference: np.ndarray, candidate: np.ndarray
                                          ) -> tuple[dict[str, float], dict[str, float]]:
    """The two rules' sums as first written, on float32 8-bit levels: the oracle for the
    integer version, which must count the very same."""
    ref, cand = np.round(reference * 255.0), np.round(candidate * 255.0)
    banding = {"region": 0.0, "flats": 0.0, "changes": 0.0, "jumps": 0.0, "tv_ref": 0.0,
               "tv_cand": 0.0, "total": float(2 * ref.size)}
    for axis in (1, 2):
        d_ref, d_cand = np.abs(np.diff(ref, axis=axis)), np.abs(np.diff(cand, axis=axis))
        activity = ndimage.uniform_filter1d(d_ref, size=9, axis=axis)
        smooth = (d_ref <= 2) & (activity >= 0.3)
        changing = smooth & (d_ref > 0)
        banding["region"] += float(smooth.sum())
        banding["changes"] += float(changing.sum())
        banding["flats"] += float((changing & (d_cand == 0)).sum())
        banding["jumps"] += float((smooth & (d_cand >= 2) & (d_cand > d_ref)).sum())
        banding["tv_ref"] += float(d_ref[smooth].sum())
        banding["tv_cand"] += float(d_cand[smooth].sum())
    newly = ((cand <= 0) & (ref > 2)) | ((cand >= 255) & (ref < 253))
    return banding, {"newly": float(newly.sum()), "n": float(newly.size)}


@pytest.mark.parametrize("case", ["photos", "posterized", "noisy ramps", "saturated", "tiny"])
def test_banding_and_clipping_count_what_the_float_levels_counted(photos: np.ndarray,
                                                                  case: str) -> None:
    rng = np.random.default_rng(7)
    if case == "photos":
        reference = photos.astype(np.float32)
        candidate = reference + rng.normal(0, 2 / 255, reference.shape)
    elif case == "posterized":
        reference = _ramps().astype(np.float32)
        candidate = np.round(reference * 32) / 32
    elif case == "noisy ramps":
        reference = _ramps().astype(np.float32)
        candidate = reference + rng.normal(0, 0.6 / 255, reference.shape)
    elif case == "saturated":
        reference = (0.5 + 0.45 * photos).astype(np.float32)
        candidate = reference * 1.25
    else:  # lines shorter than the activity window
        reference = rng.random((3, 3, 5, 3)).astype(np.float32)
        candidate = reference + rng.normal(0, 1 / 255, reference.shape)
    reference = reference.astype(np.float32)
    candidate = np.clip(candidate, 0, 1).astype(np.float32)
    pixels = colour_pixels(reference, candidate)
    banding, clipping = _banding_and_clipping_on_float_levels(reference, candidate)
    assert banding["region"] > 0 or case == "tiny"
    stats = artifact_stats(pixels)
    assert repr(stats[ArtifactKind.BANDING]) == repr(banding)  # plain floats, as before
    assert repr(stats[ArtifactKind.CLIPPING]) == repr(clipping)
