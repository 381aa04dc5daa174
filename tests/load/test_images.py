"""The image loader: awkward but valid files are used correctly; broken ones are skipped."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qcheck.errors import ImageError
from qcheck.load.bundled import bundled_images
from qcheck.load.images import ModelFeed, decode_image, fit_to_size, load_folder
from qcheck.types import InputRange


def _save(img: Image.Image, path: Path, **kwargs) -> Path:  # type: ignore[no-untyped-def]
    img.save(path, **kwargs)
    return path


def test_16_bit_grey_keeps_its_precision(tmp_path: Path) -> None:
    values = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    path = _save(Image.fromarray(values), tmp_path / "g16.png")
    rgb = decode_image(path)
    assert rgb.shape == (64, 64, 3)
    assert rgb[..., 0] == pytest.approx(values / 65535.0, abs=1e-6)
    assert len(np.unique(rgb[..., 0])) > 256  # more than 8 bits survived


def test_palette_with_transparency_composites_over_white(tmp_path: Path) -> None:
    img = Image.new("P", (8, 8), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putpixel((0, 0), 1)
    img.info["transparency"] = 0
    path = _save(img, tmp_path / "p.png", transparency=0)
    rgb = decode_image(path)
    assert rgb[4, 4] == pytest.approx([1.0, 1.0, 1.0])  # transparent red → white background
    assert rgb[0, 0] == pytest.approx([0.0, 0.0, 1.0])  # opaque blue stays blue


def test_rgba_alpha_is_composited(tmp_path: Path) -> None:
    data = np.zeros((4, 4, 4), dtype=np.uint8)
    data[..., 1] = 255
    data[..., 3] = 128
    rgb = decode_image(_save(Image.fromarray(data, "RGBA"), tmp_path / "a.png"))
    alpha = 128 / 255
    assert rgb[0, 0] == pytest.approx([1 - alpha, 1.0, 1 - alpha], abs=1e-5)


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    img = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    rgb = decode_image(_save(img, tmp_path / "c.jpg", quality=95))
    assert rgb.shape == (16, 16, 3)
    red, green, blue = rgb[8, 8]
    assert red > 0.8 and green < 0.2 and blue < 0.2


def test_grey_is_replicated_to_three_channels(tmp_path: Path) -> None:
    rgb = decode_image(_save(Image.new("L", (4, 4), 51), tmp_path / "l.png"))
    assert rgb[0, 0] == pytest.approx([0.2, 0.2, 0.2])


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    data = np.zeros((10, 20, 3), dtype=np.uint8)
    data[:, :10] = (255, 0, 0)  # left half red in the stored pixels
    img = Image.fromarray(data)
    exif = img.getexif()
    exif[0x0112] = 6  # stored rotated: display needs a 90° clockwise turn
    rgb = decode_image(_save(img, tmp_path / "r.jpg", exif=exif.tobytes(), quality=100))
    assert rgb.shape == (20, 10, 3)
    assert rgb[2, 5, 0] > 0.8  # red is now on top


def test_truncated_fake_and_bomb_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    good = np.full((8, 8, 3), 128, dtype=np.uint8)
    _save(Image.fromarray(good), tmp_path / "good.png")
    buffer = io.BytesIO()
    Image.fromarray(good).save(buffer, "PNG")
    (tmp_path / "truncated.png").write_bytes(buffer.getvalue()[:40])
    (tmp_path / "fake.jpg").write_bytes(b"not really a jpeg")
    (tmp_path / "notes.txt").write_text("hello")
    loaded = load_folder(tmp_path, (8, 8))
    assert loaded.names == ("good.png",)
    reasons = {s.file: s.reason for s in loaded.skipped}
    assert set(reasons) == {"truncated.png", "fake.jpg", "notes.txt"}


def test_folder_with_no_usable_images_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "fake.png").write_bytes(b"nope")
    with pytest.raises(ImageError, match="no usable images"):
        load_folder(tmp_path, (8, 8))
    with pytest.raises(ImageError, match="not found"):
        load_folder(tmp_path / "absent", (8, 8))


def test_fit_keeps_aspect_and_crops_the_centre() -> None:
    wide = np.zeros((10, 40, 3), dtype=np.float32)
    wide[:, 15:25] = 1.0  # a white centre stripe
    fitted = fit_to_size(wide, (10, 10))
    assert fitted.shape == (10, 10, 3)
    assert fitted.mean() > 0.9


def test_model_feed_maps_to_the_input_range() -> None:
    calib, _ = bundled_images((16, 16))
    for text, (low, high) in {"0:1": (0, 1), "0:255": (0, 255), "-1:1": (-1, 1)}.items():
        batch = next(iter(ModelFeed(calib, InputRange.parse(text))))
        assert batch.min() >= low and batch.max() <= high
        assert np.allclose(batch, calib.pixels[: len(batch)] * (high - low) + low, atol=1e-5)


def test_bundled_halves_are_disjoint_and_deterministic() -> None:
    calib, evaluation = bundled_images((32, 32))
    assert not set(calib.names) & set(evaluation.names)

    def photos(names: tuple[str, ...]) -> set[str]:
        leaves = (n.split("/")[-1] for n in names)
        return {leaf.split("-")[0] for leaf in leaves if not leaf.endswith(("-a", "-b"))}

    # A photograph and its quadrants stay in one half; synthetic charts come in a/b variants.
    assert photos(calib.names) and not photos(calib.names) & photos(evaluation.names)
    seen = {img.tobytes() for img in calib.pixels}
    assert not any(img.tobytes() in seen for img in evaluation.pixels)
    again, _ = bundled_images((32, 32))
    assert np.array_equal(calib.pixels, again.pixels)
    assert any("color-checker" in n for n in calib.names)
    assert any("grey-ramp" in n for n in evaluation.names)
