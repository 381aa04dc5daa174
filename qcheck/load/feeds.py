"""What a model's inputs beyond the image input are fed: a folder with a file per image
(matched by file stem: an image file is read like the images, a ``.npy`` holds exact
values), a constant, or (from the API) arrays.

Every image of both halves gets a value for every such input, so calibration and evaluation
see the same kind of data; an input with nothing to feed it is a usage error naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from qcheck.errors import UsageError
from qcheck.load.images import IMAGE_SUFFIXES, LUMA, ImageSet, decode_image, fit_to_size
from qcheck.types import InputRange, ModelInfo, TensorInfo

__all__ = ["FeedValue", "attach_feeds", "check_feeds", "describe_inputs"]

# A folder (path), a constant (number), one array for every image, arrays by image stem, or
# (from the API) a pair of stacks aligned with the calibration and evaluation images.
FeedValue = (str | os.PathLike[str] | float | np.ndarray | Mapping[str, np.ndarray]
             | tuple[np.ndarray, np.ndarray])
_HOW = "--feed {name}=DIR (a PNG or .npy per image, named like it) or --feed {name}=VALUE"


def describe_inputs(info: ModelInfo) -> str:
    return "; ".join(
        f"{t.name} {_shape(t)}" + (" (the images)" if t is info.image_input else "")
        for t in info.inputs)


def check_feeds(info: ModelInfo, feeds: Mapping[str, FeedValue]) -> None:
    """Every input beyond the image input has a feed, and every feed an input to go to: said
    before any image is read."""
    names = {t.name for t in info.inputs}
    for name in feeds:
        if name not in names:
            raise UsageError(f"--feed {name}: the model has no input {name!r}; its inputs: "
                             f"{describe_inputs(info)}")
        if name == info.image_input.name:
            raise UsageError(f"--feed {name}: that input takes the images (--calib/--eval); "
                             "--feed is for the model's other inputs")
    for tensor in info.extra_inputs:
        if tensor.name not in feeds:
            raise UsageError(
                f"the model's input {tensor.name!r} (shape {_shape(tensor)}) has nothing to feed "
                f"it (the images feed {info.image_input.name!r}); give "
                f"{_HOW.format(name=tensor.name)}")


def attach_feeds(calibration: ImageSet, evaluation: ImageSet, info: ModelInfo,
                 feeds: Mapping[str, FeedValue], input_range: InputRange
                 ) -> tuple[ImageSet, ImageSet]:
    """Both halves with every other input's values attached, row by row."""
    check_feeds(info, feeds)
    if not info.extra_inputs:
        return calibration, evaluation
    height, width = (int(n) for n in calibration.pixels.shape[1:3])
    attached = []
    for half, images in enumerate((calibration, evaluation)):
        extras = {t.name: _values(t, _half(feeds[t.name], half, t, images), images,
                                  (height, width), input_range)
                  for t in info.extra_inputs}
        attached.append(replace(images, extras=extras, image_input=info.image_input.name))
    return attached[0], attached[1]


def _half(value: FeedValue, half: int, tensor: TensorInfo, images: ImageSet) -> Any:
    """A pair of stacks: the one for this half, row for row with its images (as a mapping by
    image name)."""
    if not isinstance(value, tuple):
        return value
    if len(value) != 2:
        raise UsageError(f"feed for {tensor.name!r}: give a pair of stacks (calibration, "
                         f"evaluation), not {len(value)}")
    stack = np.asarray(value[half], np.float32)
    # Arrays given as images are named "<source>[i]": row i of the stack, even where an
    # evaluation image equal to a calibration image was dropped.
    rows = [_row(name) for name in images.names]
    if any(row is None or row >= len(stack) for row in rows):
        which = ("calibration", "evaluation")[half]
        raise UsageError(f"feed for {tensor.name!r}: the pair of stacks goes with images given "
                         f"as arrays, one row per {which} image ({len(stack)} rows given)")
    return {name: stack[row] for name, row in zip(images.names, rows, strict=True)}


def _row(name: str) -> int | None:
    head, _, tail = name.rpartition("[")
    return int(tail[:-1]) if head and tail.endswith("]") and tail[:-1].isdigit() else None


def _shape(tensor: TensorInfo) -> str:
    return "[" + ", ".join("None" if d is None else str(d) for d in tensor.shape) + "]"


def _sample_shape(tensor: TensorInfo, size: tuple[int, int]) -> tuple[int, ...]:
    shape = list(tensor.shape[1:])
    if len(shape) == 3:  # an image-shaped input: open sizes are the images'
        shape[0] = size[0] if shape[0] is None else shape[0]
        shape[1] = size[1] if shape[1] is None else shape[1]
    if any(d is None for d in shape):
        raise UsageError(f"the model's input {tensor.name!r} has an open dimension "
                         f"{_shape(tensor)} qcheck cannot size")
    return tuple(int(d) for d in shape)  # type: ignore[arg-type]


def _values(tensor: TensorInfo, value: FeedValue, images: ImageSet, size: tuple[int, int],
            input_range: InputRange) -> np.ndarray:
    shape = _sample_shape(tensor, size)
    count = len(images)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return np.full((count, *shape), float(value), np.float32)
    if isinstance(value, np.ndarray):
        return np.broadcast_to(_fitted(tensor, value, shape, "the array given"),
                               (count, *shape)).astype(np.float32)
    if isinstance(value, Mapping):
        return np.stack([_fitted(tensor, _by_stem(value, name, tensor), shape,
                                 f"the array for {name}") for name in images.names])
    folder = Path(str(value))
    if not folder.is_dir():
        raise UsageError(f"--feed {tensor.name}={value}: not a folder (and not a number)")
    return np.stack([_from_file(tensor, folder, name, shape, input_range)
                     for name in images.names])


def _by_stem(arrays: Mapping[str, np.ndarray], image: str, tensor: TensorInfo) -> np.ndarray:
    stem = _stem(image)
    if stem in arrays:
        return np.asarray(arrays[stem])
    if image in arrays:
        return np.asarray(arrays[image])
    raise UsageError(f"feed for {tensor.name!r}: no array for image {image!r} (keys are image "
                     "names without their suffix)")


def _stem(image: str) -> str:
    path = Path(image)
    return str(path.with_suffix("")) if path.suffix.lower() in IMAGE_SUFFIXES else image


def _from_file(tensor: TensorInfo, folder: Path, image: str, shape: tuple[int, ...],
               input_range: InputRange) -> np.ndarray:
    """The file for ``image`` in ``folder``: ``STEM.npy`` as it is, or an image file read as
    the images are (fitted to the size, lightness for one channel, in the input range)."""
    stem = _stem(image)
    candidates = [folder / f"{stem}.npy", *(folder / f"{stem}{s}" for s in
                                            sorted(IMAGE_SUFFIXES))]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise UsageError(f"--feed {tensor.name}={folder}: no {stem}.npy or {stem}.png there for "
                         f"image {image!r} (each image needs a file with its name)")
    if found.suffix == ".npy":
        try:
            loaded = np.load(found, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--feed {tensor.name}: cannot read {found}: {exc}") from None
        return _fitted(tensor, loaded, shape, str(found))
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise UsageError(f"--feed {tensor.name}: {found} is an image, but the input's shape "
                         f"{_shape(tensor)} is not an image's; give .npy files")
    try:
        rgb = fit_to_size(decode_image(found), shape[:2])
    except ValueError as exc:
        raise UsageError(f"--feed {tensor.name}: {found}: {exc}") from None
    pixels = rgb if shape[-1] == 3 else rgb @ LUMA[:, np.newaxis]
    return (pixels * input_range.span + input_range.low).astype(np.float32)


def _fitted(tensor: TensorInfo, array: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    data = np.asarray(array, dtype=np.float32)
    if data.shape != shape and data.shape == (1, *shape):
        data = data[0]
    if data.shape != shape:
        raise UsageError(f"feed for {tensor.name!r}: {what} has shape {list(data.shape)}; the "
                         f"input takes {list(shape)} per image")
    return data
