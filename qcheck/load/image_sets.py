"""The two image halves of a check: read once, fitted to the model, disjoint, shared by all."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qcheck.cache import Cache, file_digest
from qcheck.errors import ImageError
from qcheck.jobs import ImageFiles
from qcheck.keys import JobKeys
from qcheck.load.bundled import BUNDLED_SOURCE, bundled_images
from qcheck.load.images import (
    ImageSet,
    ModelFeed,
    images_from_arrays,
    load_folder,
    looks_like_image,
)
from qcheck.types import ImageSummary, InputRange, SkippedImage

__all__ = ["ImageSets", "ImagesArg"]

ImagesArg = Any  # a folder path, an array, a sequence of arrays, or None for the bundled half
Size = tuple[int | None, int | None]


@dataclass
class ImageSets:
    """Calibration and evaluation images and the input range they are fed to the model in."""

    calibration: ImageSet
    evaluation: ImageSet
    summary: ImageSummary
    input_range: InputRange
    channels: int = 3  # the model's input channels (1: lightness)
    _files: ImageFiles | None = None

    @classmethod
    def resolve(cls, calib: ImagesArg, eval: ImagesArg, size: Size, input_range: InputRange,
                cache: Cache | None = None, channels: int = 3) -> ImageSets:
        """A side not given falls back to its bundled half; evaluation images identical to a
        calibration image are dropped."""
        bundled = bundled_images(size) if calib is None or eval is None else None
        calibration = _images(calib, size, "calibration", cache) if calib is not None \
            else bundled[0]  # type: ignore[index]
        evaluation = _images(eval, size, "evaluation", cache) if eval is not None \
            else bundled[1]  # type: ignore[index]
        evaluation = _without_calibration_images(evaluation, calibration)
        if calibration.source == evaluation.source == BUNDLED_SOURCE:
            source = BUNDLED_SOURCE
        else:
            source = f"calibration: {calibration.source}; evaluation: {evaluation.source}"
        skipped = calibration.skipped + tuple(s for s in evaluation.skipped
                                              if s not in calibration.skipped)
        fed = tuple(int(n) for n in evaluation.pixels.shape[1:3])
        summary = ImageSummary(len(calibration), len(evaluation), source, skipped,
                               (fed[0], fed[1]))
        return cls(calibration, evaluation, summary, input_range, channels)

    def half(self, name: str) -> ImageSet:
        return self.calibration if name == "calibration" else self.evaluation

    def feed(self, half: str) -> ModelFeed:
        return ModelFeed(self.half(half), self.input_range, channels=self.channels)

    def files(self, workdir: Path) -> ImageFiles:
        """The preprocessed pixels, written once for the workers to memory-map (this process
        maps them too, from then on)."""
        if self._files is None:
            self.calibration = self.calibration.stored_in(workdir / "calibration.npy")
            self.evaluation = self.evaluation.stored_in(workdir / "evaluation.npy")
            self._files = ImageFiles(str(workdir / "calibration.npy"),
                                     str(workdir / "evaluation.npy"), str(self.input_range),
                                     self.channels, self.calibration.image_input,
                                     tuple(self.calibration.extras))
        return self._files


def _images(arg: ImagesArg, size: Size, what: str, cache: Cache | None = None) -> ImageSet:
    if isinstance(arg, str | os.PathLike):
        if cache is not None and cache.enabled:
            return _cached_folder(Path(arg), size, what, cache)
        return load_folder(Path(arg), size, what=f"{what} images")
    if isinstance(arg, np.ndarray):
        return images_from_arrays([arg], size, source=f"{what} array")
    return images_from_arrays(list(arg or ()), size, source=f"{what} arrays")


def _cached_folder(folder: Path, size: Size, what: str, cache: Cache) -> ImageSet:
    """Decoded, fitted pixels keyed by the files' contents: a re-run skips decoding."""
    if not folder.is_dir():
        return load_folder(folder, size, what=f"{what} images")
    key = JobKeys.image_folder(_folder_digest(folder, size))
    stored = cache.read(key, "images.json", lambda path: _stored_images(path, folder))
    pixels = cache.get_array(key, "pixels.npy")  # checked (and named) even without its list
    if stored is not None and pixels is not None and len(pixels) == len(stored.names):
        return ImageSet(stored.names, pixels, str(folder), stored.skipped)
    images = load_folder(folder, size, what=f"{what} images")
    cache.put_array(key, "pixels.npy", images.pixels)
    cache.put_json(key, "images.json", {"names": list(images.names),
                                        "skipped": [s.to_dict() for s in images.skipped]})
    return images


def _folder_digest(folder: Path, size: Size) -> str:
    """What the decoded set depends on: image files by content (streamed), anything else
    (which is skipped anyway) only by name and size, so a video in the folder costs nothing."""
    digest = hashlib.sha256(repr(size).encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        if looks_like_image(path):
            digest.update(file_digest(path).encode())
        else:
            digest.update(f"skipped {path.stat().st_size}".encode())
    return digest.hexdigest()


def _stored_images(path: Path, folder: Path) -> ImageSet:
    """The names and skipped files of a cached folder (its pixels are stored beside)."""
    stored = json.loads(path.read_text(encoding="utf-8"))
    skipped = tuple(SkippedImage(str(s["file"]), str(s["reason"])) for s in stored["skipped"])
    return ImageSet(tuple(str(n) for n in stored["names"]), np.zeros(0), str(folder), skipped)


def _without_calibration_images(evaluation: ImageSet, calibration: ImageSet) -> ImageSet:
    """Evaluation images are never calibration images: drop any identical pixel stack."""
    seen = {np.ascontiguousarray(img).tobytes() for img in calibration.pixels}
    keep = [i for i, img in enumerate(evaluation.pixels)
            if np.ascontiguousarray(img).tobytes() not in seen]
    if not keep:
        raise ImageError("every evaluation image is also a calibration image; give disjoint "
                         "--calib and --eval folders")
    return evaluation if len(keep) == len(evaluation) else evaluation.subset(keep)
