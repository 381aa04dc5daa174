"""What a model's inputs beyond the image input are fed: folders matched by image stem (PNG
read like the images, ``.npy`` as it is), constants, API arrays; typed from the command line,
``[tool.qcheck]`` and the API; every mistake one usage error naming the input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qcheck.config import config_from_table
from qcheck.errors import UsageError
from qcheck.load.feeds import attach_feeds
from qcheck.load.images import ImageSet
from qcheck.outputs import OutputKind
from qcheck.settings import ModelSettings, parse_feed
from qcheck.types import InputRange, ModelInfo, TensorInfo

UNIT = InputRange(0.0, 1.0)
INFO = ModelInfo("m.keras", "0", (TensorInfo("photo", (None, 8, 8, 3), "float32"),
                                   TensorInfo("mask", (None, 8, 8, 1), "float32"),
                                   TensorInfo("strength", (None, 1), "float32")),
                 (TensorInfo("out", (None, 8, 8, 3), "float32"),))


def _images(names: tuple[str, ...]) -> ImageSet:
    pixels = np.random.default_rng(0).random((len(names), 8, 8, 3)).astype(np.float32)
    return ImageSet(names, pixels, "test")


def test_folders_match_images_by_stem_and_numbers_fill_every_value(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    wanted = {}
    for index, stem in enumerate(("a", "b", "sub/c")):
        mask = (np.arange(64).reshape(8, 8) % (index + 2) == 0).astype(np.uint8) * 255
        (masks / stem).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask, mode="L").save(masks / f"{stem}.png")
        wanted[stem] = mask[..., None] / 255.0
    np.save(masks / "b.npy", np.full((8, 8, 1), 0.25, np.float32))  # .npy wins: exact values
    calibration, evaluation = attach_feeds(
        _images(("a.jpg", "sub/c.png")), _images(("b.png",)), INFO,
        {"mask": str(masks), "strength": 0.5}, UNIT)
    assert calibration.image_input == evaluation.image_input == "photo"
    np.testing.assert_allclose(calibration.extras["mask"][0], wanted["a"], atol=1e-6)
    np.testing.assert_allclose(calibration.extras["mask"][1], wanted["sub/c"], atol=1e-6)
    np.testing.assert_array_equal(evaluation.extras["mask"][0], np.full((8, 8, 1), 0.25))
    assert calibration.extras["strength"].shape == (2, 1)
    assert np.all(calibration.extras["strength"] == 0.5)
    # The values travel with the images: a subset keeps its rows, the digest sees them.
    assert calibration.subset([1]).extras["mask"].shape == (1, 8, 8, 1)
    other, _ = attach_feeds(_images(("a.jpg", "sub/c.png")), _images(("b.png",)), INFO,
                            {"mask": str(masks), "strength": 0.7}, UNIT)
    assert other.digest() != calibration.digest()


@pytest.mark.parametrize(("feeds", "message"), [
    ({"strength": 1.0}, "the model's input 'mask' (shape [None, 8, 8, 1]) has nothing to feed "
                        "it (the images feed 'photo'); give --feed mask=DIR"),
    ({"mask": 1.0, "strength": 1.0, "guide": 1.0}, "--feed guide: the model has no input "
                                                   "'guide'; its inputs: photo [None, 8, 8, 3]"),
    ({"mask": 1.0, "strength": 1.0, "photo": 1.0}, "--feed photo: that input takes the images"),
    ({"mask": "/no/such/folder", "strength": 1.0}, "not a folder (and not a number)"),
])
def test_every_feed_mistake_is_one_usage_error_naming_the_input(
        feeds: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError) as raised:
        attach_feeds(_images(("a.png",)), _images(("b.png",)), INFO, feeds, UNIT)  # type: ignore[arg-type]
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_missing_file_and_a_wrong_shape_name_the_image_and_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.npy").write_bytes(b"")
    np.save(tmp_path / "a.npy", np.zeros((4, 4, 1), np.float32))
    with pytest.raises(UsageError, match=r"a\.npy has shape \[4, 4, 1\]; the input takes "
                                         r"\[8, 8, 1\]"):
        attach_feeds(_images(("a.png",)), _images(("a2.png",)), INFO,
                     {"mask": str(tmp_path), "strength": 0}, UNIT)
    with pytest.raises(UsageError, match=r"no b\.npy or b\.png there for image 'b\.png'"):
        attach_feeds(_images(("b.png",)), _images(("c.png",)), INFO,
                     {"mask": str(tmp_path), "strength": 0}, UNIT)


def test_the_api_takes_a_pair_of_stacks_row_for_row_with_arrays_given_as_images() -> None:
    calib_masks = np.stack([np.full((8, 8, 1), i, np.float32) for i in range(3)])
    eval_masks = np.stack([np.full((8, 8, 1), 10 + i, np.float32) for i in range(3)])
    # The second evaluation image was dropped (equal to a calibration image): row 2 stays 2.
    calibration, evaluation = attach_feeds(
        _images(("calibration arrays[0]", "calibration arrays[1]", "calibration arrays[2]")),
        _images(("evaluation arrays[0]", "evaluation arrays[2]")), INFO,
        {"mask": (calib_masks, eval_masks), "strength": np.ones(1, np.float32)}, UNIT)
    assert [float(m.max()) for m in evaluation.extras["mask"]] == [10.0, 12.0]
    assert [float(m.max()) for m in calibration.extras["mask"]] == [0.0, 1.0, 2.0]


def test_feeds_are_typed_from_the_command_line_the_config_file_and_the_api(
        tmp_path: Path) -> None:
    assert parse_feed("strength=0.5") == ("strength", 0.5)
    assert parse_feed("mask=masks/") == ("mask", "masks/")
    with pytest.raises(UsageError, match="must be NAME=DIR or NAME=VALUE"):
        parse_feed("mask")
    config = config_from_table({"feed": {"mask": "masks", "strength": 0.5}},
                               tmp_path / "pyproject.toml", "[tool.qcheck]")
    assert config.feed == (f"mask={(tmp_path / 'masks').resolve()}", "strength=0.5")
    settings = config.model_settings()
    assert dict(settings.feeds) == {"mask": str((tmp_path / "masks").resolve()),
                                    "strength": 0.5}
    assert ModelSettings.build(feeds={"mask": 1.0}).feeds == (("mask", 1.0),)
    kinds = ModelSettings.build(output_kind="depth=tensor, rgb=image")
    assert (kinds.kind_of("depth"), kinds.kind_of("rgb")) == (OutputKind.TENSOR, OutputKind.IMAGE)
    assert kinds.kind_of("other") is None
    with pytest.raises(UsageError, match="--output-kind 'depth=pixels' is not supported"):
        ModelSettings.build(output_kind="depth=pixels")


def test_a_zoo_manifest_takes_feed_per_model_and_in_its_defaults(tmp_path: Path) -> None:
    from qcheck.zoo.manifest import load_catalogue

    manifest = tmp_path / "qcheck-zoo.toml"
    manifest.write_text('[defaults]\nfeed = {strength = 0.5}\n\n'
                        '[[model]]\npath = "inpaint.keras"\nfeed = {mask = "masks"}\n\n'
                        '[[model]]\npath = "denoise.keras"\n', encoding="utf-8")
    inpaint, denoise = load_catalogue(manifest)
    assert inpaint.settings.feed == (f"mask={(tmp_path / 'masks').resolve()}",)
    assert dict(inpaint.settings.model_settings().feeds) == {
        "mask": str((tmp_path / "masks").resolve())}
    assert denoise.settings.feed == ("strength=0.5",)
