"""Read image folders into float RGB arrays that every backend sees identically.

All pixels are kept as float32 RGB in [0, 1] until the last step, where ``ModelFeed`` maps them to
the model's input range. 16-bit sources keep their precision; alpha is composited over white.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from qcheck.errors import ImageError
from qcheck.named import Batch, sample_rows
from qcheck.types import InputRange, SkippedImage

__all__ = [
    "DYNAMIC_SIZE",
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "ImageSet",
    "ModelFeed",
    "decode_image",
    "extra_file",
    "fit_to_size",
    "images_from_arrays",
    "load_folder",
    "looks_like_image",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
# How each accepted format's files begin (WebP: "RIFF", a size, then "WEBP").
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"II*\x00", b"MM\x00*")
# Anything larger is treated as a decompression bomb rather than a photograph.
MAX_PIXELS = 64_000_000
# Working size for models whose spatial input size is not fixed: bounded so batches stack.
DYNAMIC_SIZE = 128


@dataclass(frozen=True)
class ImageSet:
    """A named stack of RGB images in [0, 1], all the same size."""

    names: tuple[str, ...]
    pixels: np.ndarray  # (N, H, W, 3) float32
    source: str
    skipped: tuple[SkippedImage, ...] = ()
    # A model with several inputs: the other inputs' model-ready values, one row per image
    # (``qcheck.load.feeds``), and the name of the input the images feed.
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    image_input: str = "image"

    def __len__(self) -> int:
        return len(self.names)

    def digest(self) -> str:
        """Content hash of the pixels (and of what the other inputs are fed); every cache key
        uses it, so it is computed once."""
        return self._digest

    @functools.cached_property
    def _digest(self) -> str:
        digest = hashlib.sha256(np.ascontiguousarray(self.pixels).tobytes())
        for name in sorted(self.extras):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(self.extras[name], np.float32).tobytes())
        return digest.hexdigest()

    def stored_in(self, path: Path) -> ImageSet:
        """The same images, now read from the ``.npy`` file at ``path`` (memory-mapped, so
        they need not stay resident), written here if absent; other inputs' values beside."""
        if not path.exists():
            np.save(path, self.pixels)
        extras = {}
        for name, values in self.extras.items():
            extra_path = extra_file(path, name)
            if not extra_path.exists():
                np.save(extra_path, np.asarray(values, np.float32))
            extras[name] = np.load(extra_path, mmap_mode="r")
        stored = ImageSet(self.names, np.load(path, mmap_mode="r"), self.source, self.skipped,
                          extras, self.image_input)
        stored.__dict__["_digest"] = self.digest()  # same pixels, same hash
        return stored

    def subset(self, keep: Sequence[int]) -> ImageSet:
        return ImageSet(
            names=tuple(self.names[i] for i in keep),
            pixels=self.pixels[list(keep)],
            source=self.source,
            skipped=self.skipped,
            extras={name: values[list(keep)] for name, values in self.extras.items()},
            image_input=self.image_input,
        )


def extra_file(images: Path, name: str) -> Path:
    """Where the values fed to input ``name`` are stored beside the images' ``.npy``."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return images.with_name(f"{images.stem}.input-{safe}.npy")


# BT.601 luma weights: what a 1-channel (Y) model is fed.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# Pixels per inference batch: 16 images up to 64×64, 4 at 128×128, 1 at 224×224. A backend's
# working memory grows with the batch (a MIRNet-style model holds ~500 floats per pixel: 1.8 GB
# per lane at 16 images of 128×128, 1.3 GB at 4), its speed barely does past one large image.
BATCH_PIXELS = 1 << 16
MAX_BATCH = 16


def batch_size_for(size: tuple[int, ...]) -> int:
    pixels = int(np.prod(size)) if len(size) else 1
    return max(1, min(MAX_BATCH, BATCH_PIXELS // max(pixels, 1)))


class ModelFeed:
    """Batches of model-ready input, in the model's value range; iterable any number of times.

    One feed drives calibration for every converter and inference for every runner, so all
    backends see the very same numbers.
    """

    def __init__(self, images: ImageSet, input_range: InputRange, batch_size: int | None = None,
                 channels: int = 3):
        self.images = images
        self.input_range = input_range
        self.channels = channels  # 1: the model takes lightness (BT.601 luma), not RGB
        self.batch_size = batch_size or batch_size_for(images.pixels.shape[1:3])

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[Batch]:
        for start in range(0, len(self.images), self.batch_size):
            yield self.rows(slice(start, start + self.batch_size))

    def rows(self, rows: slice | Sequence[int]) -> Batch:
        """The model's input for these images: an array, or for a model with several inputs
        a dict of arrays by input name."""
        chosen = rows if isinstance(rows, slice) else list(rows)
        images = self.to_model_range(self.images.pixels[chosen])
        if not self.images.extras:
            return images
        return {self.images.image_input: images,
                **{name: np.asarray(values[chosen], np.float32)
                   for name, values in self.images.extras.items()}}

    def samples(self) -> Iterator[Batch]:
        """One image at a time, with a batch axis of 1 (what calibrators expect)."""
        for batch in self:
            yield from sample_rows(batch)

    def to_model_range(self, pixels: np.ndarray) -> np.ndarray:
        if self.channels == 1:
            pixels = np.asarray(pixels, np.float32) @ LUMA[:, np.newaxis]
        lo, span = self.input_range.low, self.input_range.span
        return (pixels * span + lo).astype(np.float32)


def load_folder(
    folder: str | Path, size: tuple[int | None, int | None], *, what: str = "images"
) -> ImageSet:
    """Every readable image under ``folder`` (sorted, recursive), fitted to ``size``."""
    root = Path(folder)
    if not root.exists():
        raise ImageError(f"{what} folder not found: {root}")
    if not root.is_dir():
        raise ImageError(f"{what} path is not a folder: {root}")
    names: list[str] = []
    arrays: list[np.ndarray] = []
    skipped: list[SkippedImage] = []
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    for path in files:
        rel = str(path.relative_to(root))
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(SkippedImage(rel, f"not an image file ({path.suffix or 'no suffix'})"))
            continue
        try:
            rgb = decode_image(path)
        except ValueError as exc:
            skipped.append(SkippedImage(rel, str(exc)))
            continue
        names.append(rel)
        arrays.append(fit_to_size(rgb, size))
    if not arrays:
        detail = (f"; skipped {len(skipped)} file(s), e.g. {skipped[0].file}: {skipped[0].reason}"
                  if skipped else "")
        raise ImageError(
            f"no usable images in {what} folder {root} (accepted: "
            f"{', '.join(sorted(IMAGE_SUFFIXES))}){detail}"
        )
    return ImageSet(tuple(names), np.stack(arrays), source=str(root), skipped=tuple(skipped))


def images_from_arrays(arrays: Iterable[np.ndarray], size: tuple[int | None, int | None],
                       source: str = "arrays") -> ImageSet:
    """Accept uint8 (0-255) or float (0-1) RGB arrays from the Python API."""
    fitted: list[np.ndarray] = []
    for array in arrays:
        data = np.asarray(array)
        if data.ndim == 4:
            fitted.extend(fit_to_size(_as_unit_float(img), size) for img in data)
        elif data.ndim == 3 and data.shape[-1] == 3:
            fitted.append(fit_to_size(_as_unit_float(data), size))
        else:
            raise ImageError(f"image arrays must be (H, W, 3) or (N, H, W, 3), got {data.shape}")
    if not fitted:
        raise ImageError("no images in the arrays given")
    names = tuple(f"{source}[{i}]" for i in range(len(fitted)))
    return ImageSet(names, np.stack(fitted), source=source)


def looks_like_image(path: Path) -> bool:
    """Whether ``path`` has an accepted suffix and begins like an image of such a format."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
    except OSError:
        return False
    return head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def decode_image(path: Path) -> np.ndarray:
    """Decode one file to float32 RGB in [0, 1]; ``ValueError`` says why a file is unusable."""
    try:
        # Opening reads only the header; qcheck applies its own size limit before decoding.
        Image.MAX_IMAGE_PIXELS = None
        with Image.open(path) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ValueError(f"refused: {width}x{height} exceeds {MAX_PIXELS} pixels "
                                 "(possible decompression bomb)")
            img.load()
            return _to_unit_rgb(ImageOps.exif_transpose(img))
    except UnidentifiedImageError:
        raise ValueError("not a readable image") from None
    except (OSError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise ValueError(f"unreadable image: {str(exc).splitlines()[0][:200]}") from None


def _to_unit_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        grey = np.asarray(img, dtype=np.float64)
        # Pillow opens 16-bit greys as I;16 or I; either way the file's range is 0..65535.
        grey = np.clip(grey / 65535.0, 0.0, 1.0)
        return np.repeat(grey[..., np.newaxis], 3, axis=-1).astype(np.float32)
    if mode == "F":
        grey = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)
        return np.repeat(grey[..., np.newaxis], 3, axis=-1).astype(np.float32)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:4]
        return (rgba[..., :3] * alpha + (1.0 - alpha)).astype(np.float32)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def _as_unit_float(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def fit_to_size(rgb: np.ndarray, size: tuple[int | None, int | None]) -> np.ndarray:
    """Scale so the image covers ``size``, then centre-crop; aspect ratio is kept.

    Pillow resamples each channel as a 32-bit float image (``F`` mode), so 16-bit sources keep
    their precision; its filters widen when shrinking, which is the anti-aliasing.
    """
    target_h = size[0] or DYNAMIC_SIZE
    target_w = size[1] or DYNAMIC_SIZE
    height, width = rgb.shape[:2]
    scale = max(target_h / height, target_w / width)
    new_h = max(target_h, round(height * scale))
    new_w = max(target_w, round(width * scale))
    top = (new_h - target_h) // 2
    left = (new_w - target_w) // 2
    if (new_h, new_w) == (height, width):
        cropped = rgb[top : top + target_h, left : left + target_w]
        return np.clip(cropped, 0.0, 1.0).astype(np.float32)
    # Resample only the window that survives the crop (box in source coordinates).
    box = (left / scale, top / scale, (left + target_w) / scale, (top + target_h) / scale)
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(rgb[..., index], dtype=np.float32),
                                   mode="F")
                   .resize((target_w, target_h), Image.Resampling.BILINEAR, box=box))
        for index in range(3)
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)
