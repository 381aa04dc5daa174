"""The bundled image set: real photographs shipped inside scikit-image plus colour references.

Nothing is downloaded. The photographs show natural content; the synthetic references are where
quantization damage is easiest to see: the 24-patch colour checker, smooth gradients of every hue
(banding), saturated primaries and secondaries (clipping), skin tones and a neutral grey ramp
(tint). Every source is assigned to exactly one half, so calibration and evaluation are disjoint.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from skimage import color

from qcheck.load.images import ImageSet, fit_to_size

__all__ = ["BUNDLED_SOURCE", "COLOR_CHECKER_SRGB", "bundled_images", "bundled_references"]

BUNDLED_SOURCE = "bundled"
_CANVAS = 256

# sRGB (8-bit) values of the 24 ColorChecker patches, row by row (dark skin … black).
COLOR_CHECKER_SRGB: tuple[tuple[int, int, int], ...] = (
    (115, 82, 68), (194, 150, 130), (98, 122, 157), (87, 108, 67), (133, 128, 177),
    (103, 189, 170), (214, 126, 44), (80, 91, 166), (193, 90, 99), (94, 60, 108),
    (157, 188, 64), (224, 163, 46), (56, 61, 150), (70, 148, 73), (175, 54, 60),
    (231, 199, 31), (187, 86, 149), (8, 133, 161), (243, 243, 242), (200, 200, 200),
    (160, 160, 160), (122, 122, 121), (85, 85, 85), (52, 52, 52),
)
# The Monk skin tone scale, light to dark.
SKIN_TONES_SRGB: tuple[tuple[int, int, int], ...] = (
    (246, 237, 228), (243, 231, 219), (247, 234, 208), (234, 218, 186), (215, 189, 150),
    (160, 126, 86), (130, 92, 67), (96, 65, 52), (58, 49, 42), (41, 36, 32),
)
# One photograph of each stereo pair is enough; the pair would leak across the halves.
_PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry",
           "motorcycle", "retina", "rocket")


def bundled_images(size: tuple[int | None, int | None]) -> tuple[ImageSet, ImageSet]:
    """The (calibration, evaluation) halves, fitted to ``size``."""
    calib, evaluation = _sources()
    return _fitted(calib, size, "calibration"), _fitted(evaluation, size, "evaluation")


def bundled_references(size: tuple[int | None, int | None]) -> np.ndarray:
    """The synthetic colour references of the calibration half (never evaluation images)."""
    calib, _ = _sources()
    charts = [rgb for name, rgb in calib if name.endswith("-a")]
    return np.stack([fit_to_size(rgb, size) for rgb in charts])


def _fitted(sources: tuple[tuple[str, np.ndarray], ...], size: tuple[int | None, int | None],
            half: str) -> ImageSet:
    names = tuple(f"{BUNDLED_SOURCE}/{half}/{name}" for name, _ in sources)
    pixels = np.stack([fit_to_size(rgb, size) for _, rgb in sources])
    return ImageSet(names, pixels, source=BUNDLED_SOURCE)


@functools.cache
def _sources() -> tuple[tuple[tuple[str, np.ndarray], ...], tuple[tuple[str, np.ndarray], ...]]:
    calib: list[tuple[str, np.ndarray]] = []
    evaluation: list[tuple[str, np.ndarray]] = []
    for index, name in enumerate(_PHOTOS):
        half = calib if index % 2 == 0 else evaluation
        half.extend(_photo_views(name))
    for name, (first, second) in _SYNTHETIC_PAIRS.items():
        calib.append((f"{name}-a", first()))
        evaluation.append((f"{name}-b", second()))
    return tuple(calib), tuple(evaluation)


def _photo_views(name: str) -> list[tuple[str, np.ndarray]]:
    """The whole photograph and its four quadrants, so small models see detail too."""
    from skimage import data

    raw = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    rgb = raw.astype(np.float32) / 255.0
    height, width = rgb.shape[:2]
    h2, w2 = height // 2, width // 2
    views = [("full", rgb), ("top-left", rgb[:h2, :w2]), ("top-right", rgb[:h2, w2:]),
             ("bottom-left", rgb[h2:, :w2]), ("bottom-right", rgb[h2:, w2:])]
    return [(f"{name}-{view}", np.ascontiguousarray(pixels)) for view, pixels in views]


def _grid(colours: tuple[tuple[int, int, int], ...], columns: int, shade: float) -> np.ndarray:
    """Patches on a dark surround; ``shade`` adds a soft light falloff across the chart."""
    rows = -(-len(colours) // columns)
    canvas = np.full((_CANVAS, _CANVAS, 3), 0.1, dtype=np.float32)
    cell_h, cell_w = _CANVAS // rows, _CANVAS // columns
    margin = max(2, cell_w // 10)
    for index, rgb in enumerate(colours):
        r, c = divmod(index, columns)
        patch = np.asarray(rgb, dtype=np.float32) / 255.0
        canvas[r * cell_h + margin : (r + 1) * cell_h - margin,
               c * cell_w + margin : (c + 1) * cell_w - margin] = patch
    if shade:
        ys, xs = np.mgrid[0:_CANVAS, 0:_CANVAS] / _CANVAS
        falloff = 1.0 - shade * ((xs - 0.5) ** 2 + (ys - 0.5) ** 2)
        canvas = canvas * falloff[..., np.newaxis]
    return np.clip(canvas, 0.0, 1.0)


def _hue_sweep(vary: str) -> np.ndarray:
    """Hue across x; value (or saturation) across y: every hue as a smooth gradient."""
    ys, xs = np.mgrid[0:_CANVAS, 0:_CANVAS] / (_CANVAS - 1)
    hsv = np.empty((_CANVAS, _CANVAS, 3), dtype=np.float64)
    hsv[..., 0] = xs
    hsv[..., 1] = 1.0 if vary == "value" else 0.15 + 0.85 * ys
    hsv[..., 2] = 0.1 + 0.9 * ys if vary == "value" else 1.0
    return color.hsv2rgb(hsv).astype(np.float32)


def _hue_ramps(offset: float) -> np.ndarray:
    """Bands of single hues, black through the pure hue to white, left to right."""
    ys, xs = np.mgrid[0:_CANVAS, 0:_CANVAS] / (_CANVAS - 1)
    bands = 6
    hue = (np.floor(ys * bands).clip(0, bands - 1) / bands + offset) % 1.0
    pure = color.hsv2rgb(np.stack([hue, np.ones_like(hue), np.ones_like(hue)], axis=-1))
    t = xs[..., np.newaxis]
    towards_black = pure * (2 * t)
    towards_white = pure + (1 - pure) * (2 * t - 1)
    return np.where(t < 0.5, towards_black, towards_white).astype(np.float32)


def _primaries(soft: bool) -> np.ndarray:
    colours = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 255, 255), (255, 0, 255),
               (255, 255, 0), (255, 255, 255), (0, 0, 0), (255, 128, 0))
    canvas = _grid(colours, columns=3, shade=0.0)
    if soft:
        from scipy.ndimage import gaussian_filter

        canvas = gaussian_filter(canvas, sigma=(6, 6, 0))
    return canvas.astype(np.float32)


def _grey_ramp(direction: str) -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, _CANVAS, dtype=np.float32)
    plane = np.tile(ramp, (_CANVAS, 1))
    if direction == "vertical":
        plane = plane.T
    return np.repeat(plane[..., np.newaxis], 3, axis=-1)


def _skin(shade: float) -> np.ndarray:
    return _grid(SKIN_TONES_SRGB, columns=5, shade=shade)


_Maker = Callable[[], np.ndarray]
_SYNTHETIC_PAIRS: dict[str, tuple[_Maker, _Maker]] = {
    "color-checker": (lambda: _grid(COLOR_CHECKER_SRGB, 6, 0.0),
                      lambda: _grid(COLOR_CHECKER_SRGB, 6, 0.6)),
    "hue-sweep": (lambda: _hue_sweep("value"), lambda: _hue_sweep("saturation")),
    "hue-ramps": (lambda: _hue_ramps(0.0), lambda: _hue_ramps(1 / 12)),
    "primaries": (lambda: _primaries(False), lambda: _primaries(True)),
    "skin-tones": (lambda: _skin(0.0), lambda: _skin(0.8)),
    "grey-ramp": (lambda: _grey_ramp("horizontal"), lambda: _grey_ramp("vertical")),
}
