"""Colour metrics: exact on constructed cases, and CIEDE2000 against published reference pairs."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import color

from qcheck.compare.color import compare_colour

# Sharma, Wu and Dalal (2005), "The CIEDE2000 color-difference formula", Table 1:
# L1 a1 b1, L2 a2 b2, ΔE00.
SHARMA_PAIRS = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 2.8361, -74.0200), (50.0, 0.0, -82.7485), 3.4412),
    ((50.0, -1.3802, -84.2814), (50.0, 0.0, -82.7485), 1.0000),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0009), 7.1792),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5, 0.0), (61.0, -5.0, 29.0), 22.8977),
    ((50.0, 2.5, 0.0), (56.0, -27.0, -3.0), 31.9030),
    ((50.0, 2.5, 0.0), (58.0, 24.0, 15.0), 19.4535),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((63.0109, -31.0961, -5.8663), (62.8187, -29.7946, -4.0864), 1.2630),
]


@pytest.mark.parametrize(("lab1", "lab2", "expected"), SHARMA_PAIRS)
def test_ciede2000_matches_published_pairs(lab1, lab2, expected) -> None:  # type: ignore[no-untyped-def]
    delta = color.deltaE_ciede2000(np.array(lab1), np.array(lab2))
    assert float(delta) == pytest.approx(expected, abs=1e-4)


def _images(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 0.8, size=(3, 16, 16, 3)).astype(np.float32)


def test_identical_outputs_give_zero_delta_e() -> None:
    images = _images()
    result = compare_colour(images, images.copy())
    assert result.delta_e_mean == 0.0
    assert result.delta_e_p95 == 0.0
    assert result.delta_e_max == 0.0
    assert result.channel_bias == {"r": 0.0, "g": 0.0, "b": 0.0}
    assert result.chroma_share == 0.0
    assert result.ssim == pytest.approx(1.0)
    assert result.psnr_db == float("inf")


@pytest.mark.parametrize(("channel", "levels"), [(0, 5.0), (1, -3.0), (2, 7.5)])
def test_constant_shift_gives_exactly_that_channel_bias(channel: int, levels: float) -> None:
    reference = _images(1).astype(np.float64)
    shifted = reference.copy()
    shifted[..., channel] += levels / 255.0
    result = compare_colour(reference, shifted)
    for index, name in enumerate("rgb"):
        expected = levels if index == channel else 0.0
        assert result.channel_bias[name] == pytest.approx(expected, abs=1e-9)
    assert result.delta_e_mean > 0.5


def test_chroma_share_separates_lightness_from_colour_error() -> None:
    reference = _images(2).astype(np.float64)
    brighter = np.clip(reference + 4 / 255.0, 0, 1)  # same shift on all channels: mostly lightness
    redder = reference.copy()
    redder[..., 0] += 4 / 255.0  # one channel: mostly chroma
    assert compare_colour(reference, brighter).chroma_share < 0.3
    assert compare_colour(reference, redder).chroma_share > 0.5


def test_delta_e_grows_with_error() -> None:
    reference = _images(3)
    small = compare_colour(reference, np.clip(reference + 1 / 255, 0, 1))
    large = compare_colour(reference, np.clip(reference + 8 / 255, 0, 1))
    assert 0 < small.delta_e_mean < large.delta_e_mean
    assert large.psnr_db < small.psnr_db
