"""Name the kinds of colour damage a person would see, each by one documented rule.

Every rule compares the target's output with the float model's on the evaluation images:

- **tint**: a systematic per-channel shift. Some channel's mean error is at least
  ``TINT_MIN_LEVELS`` 8-bit levels and at least ``TINT_MIN_SYSTEMATIC`` of that channel's RMS
  error (a shift, not noise).
- **fringing**: chroma error concentrated on edges. On the float output's strongest edges (top
  ``EDGE_QUANTILE`` of lightness gradient, and a real edge) the mean chroma error is at least
  ``FRINGE_MIN_CHROMA`` and at least ``FRINGE_EDGE_RATIO`` times the mean elsewhere.
- **speckle**: isolated high-frequency chroma error. Pixels whose chroma error exceeds
  ``SPECKLE_MIN_CHROMA`` while their 3×3 neighbourhood median stays below ``SPECKLE_MAX_MEDIAN``
  are at least ``SPECKLE_MIN_FRACTION`` of all pixels and most of the strongly wrong ones.
- **banding**: smooth float gradients turned into steps. In gently varying regions of the float
  output (8-bit steps of at most 2 levels), at least ``BANDING_MIN_FLAT`` of the float's changes
  become flat in the target, at least ``BANDING_MIN_JUMPS`` of positions jump by 2+ levels, and
  total variation stays within ``BANDING_MAX_TV_RATIO`` (steps, not noise).
- **clipping**: values pushed to the ends of the range. At least ``CLIP_MIN_FRACTION`` of
  pixel-channels saturate in the target but not in the float output, or at least
  ``CLIP_MIN_OUT_OF_RANGE`` of values fall outside the calibrated range.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from qcheck.compare.pixels import ColourPixels
from qcheck.types import ArtifactKind

__all__ = ["Stats", "add_stats", "artifact_stats", "decide_artifacts", "detect_artifacts",
           "has_banding", "has_clipping", "has_fringing", "has_speckle", "has_tint"]

TINT_MIN_LEVELS = 1.5
TINT_MIN_SYSTEMATIC = 0.5
EDGE_QUANTILE = 0.9
EDGE_MIN_GRADIENT = 5.0  # CIELAB L units per pixel (Sobel-normalized)
FRINGE_MIN_CHROMA = 2.0
FRINGE_EDGE_RATIO = 3.0
SPECKLE_MIN_CHROMA = 4.0
SPECKLE_MAX_MEDIAN = 1.0
SPECKLE_MIN_FRACTION = 0.001
BANDING_MIN_REGION = 0.005
BANDING_MIN_FLAT = 0.4
BANDING_MIN_JUMPS = 0.03
BANDING_MAX_TV_RATIO = 1.5
CLIP_MIN_FRACTION = 0.002
CLIP_MIN_OUT_OF_RANGE = 0.01


Stats = dict[str, float]


def detect_artifacts(comparison: ColourPixels, clipped_fraction: float = 0.0
                     ) -> tuple[ArtifactKind, ...]:
    return decide_artifacts(artifact_stats(comparison), clipped_fraction)


def artifact_stats(c: ColourPixels) -> dict[ArtifactKind, Stats]:
    """Sums each rule needs; add them over chunks of images, then ``decide_artifacts``."""
    return {kind: measure(c) for kind, (measure, _) in _RULES.items()}


def add_stats(total: dict[ArtifactKind, Stats], part: dict[ArtifactKind, Stats]) -> None:
    for kind, values in part.items():
        into = total.setdefault(kind, {})
        for key, value in values.items():
            into[key] = into.get(key, 0.0) + value


def decide_artifacts(stats: dict[ArtifactKind, Stats], clipped_fraction: float = 0.0
                     ) -> tuple[ArtifactKind, ...]:
    seen = []
    for kind, (_, decide) in _RULES.items():
        values = {**stats.get(kind, {}), "clipped_fraction": clipped_fraction}
        if decide(values):
            seen.append(kind)
    return tuple(seen)


def _tint_stats(c: ColourPixels) -> Stats:
    # Summed in float64, as the reported channel_bias is: the rule and the number agree.
    error = (c.error * 255.0).reshape(-1, 3)
    sums = error.sum(axis=0)
    squares = np.einsum("ij,ij->j", error, error)
    stats = {"n": float(len(error))}
    for index in range(3):
        stats[f"sum{index}"] = float(sums[index])
        stats[f"sq{index}"] = float(squares[index])
    return stats


def _tint(stats: Stats) -> bool:
    n = max(stats.get("n", 0.0), 1.0)
    for index in range(3):
        bias = abs(stats.get(f"sum{index}", 0.0)) / n
        rms = np.sqrt(stats.get(f"sq{index}", 0.0) / n)
        if bias >= TINT_MIN_LEVELS and bias >= TINT_MIN_SYSTEMATIC * max(rms, 1e-12):
            return True
    return False


def _fringe_stats(c: ColourPixels) -> Stats:
    """Each image's own strongest edges (its own gradient and quantile), so neither its
    neighbours in the stack nor the chunk it is compared in change them."""
    from scipy import ndimage  # here: a warm check that compares nothing skips its import

    stats = {"on_sum": 0.0, "on_n": 0.0, "off_sum": 0.0, "off_n": 0.0}
    for lightness, chroma in zip(c.lab_reference[..., 0], c.chroma_error, strict=True):
        gradient = np.hypot(ndimage.sobel(lightness, axis=0), ndimage.sobel(lightness, axis=1))
        gradient /= 8.0
        threshold = max(float(np.quantile(gradient, EDGE_QUANTILE)), EDGE_MIN_GRADIENT)
        edges = gradient >= threshold
        stats["on_sum"] += float(chroma[edges].sum())
        stats["on_n"] += float(edges.sum())
        stats["off_sum"] += float(chroma[~edges].sum())
        stats["off_n"] += float((~edges).sum())
    return stats


def _fringing(stats: Stats) -> bool:
    if not stats.get("on_n") or not stats.get("off_n"):
        return False
    on_edges = stats["on_sum"] / stats["on_n"]
    elsewhere = stats["off_sum"] / stats["off_n"]
    return on_edges >= FRINGE_MIN_CHROMA and on_edges >= FRINGE_EDGE_RATIO * max(elsewhere, 1e-6)


def _speckle_stats(c: ColourPixels) -> Stats:
    chroma = c.chroma_error
    strong = chroma > SPECKLE_MIN_CHROMA
    isolated = 0.0
    if strong.any():
        from scipy import ndimage

        local = ndimage.median_filter(chroma, size=(1, 3, 3), mode="nearest")
        isolated = float((strong & (local < SPECKLE_MAX_MEDIAN)).sum())
    return {"strong": float(strong.sum()), "isolated": isolated, "n": float(chroma.size)}


def _speckle(stats: Stats) -> bool:
    if not stats.get("strong"):
        return False
    return (stats["isolated"] / max(stats["n"], 1.0) >= SPECKLE_MIN_FRACTION
            and stats["isolated"] >= 0.5 * stats["strong"])


def _banding_stats(c: ColourPixels) -> Stats:
    ref, cand = c.levels
    stats = {"region": 0.0, "flats": 0.0, "changes": 0.0, "jumps": 0.0, "tv_ref": 0.0,
             "tv_cand": 0.0, "total": float(2 * ref.size)}
    from scipy import ndimage

    for axis in (1, 2):
        d_ref = np.abs(np.diff(ref, axis=axis))
        d_cand = np.abs(np.diff(cand, axis=axis))
        # Gently varying: small steps, but the neighbourhood does change.
        activity = ndimage.uniform_filter1d(d_ref, size=9, axis=axis, output=np.float32)
        smooth = (d_ref <= 2) & (activity >= 0.3)
        changing = smooth & (d_ref > 0)
        stats["region"] += float(np.count_nonzero(smooth))
        stats["changes"] += float(np.count_nonzero(changing))
        stats["flats"] += float(np.count_nonzero(changing & (d_cand == 0)))
        stats["jumps"] += float(np.count_nonzero(smooth & (d_cand >= 2) & (d_cand > d_ref)))
        stats["tv_ref"] += float(np.sum(d_ref * smooth, dtype=np.int64))
        stats["tv_cand"] += float(np.sum(d_cand * smooth, dtype=np.int64))
    return stats


def _banding(stats: Stats) -> bool:
    region, changes, tv_ref = stats.get("region", 0.0), stats.get("changes", 0.0), \
        stats.get("tv_ref", 0.0)
    if region < BANDING_MIN_REGION * stats.get("total", 1.0) or changes == 0 or tv_ref == 0:
        return False
    return (stats["flats"] / changes >= BANDING_MIN_FLAT
            and stats["jumps"] / region >= BANDING_MIN_JUMPS
            and stats["tv_cand"] / tv_ref <= BANDING_MAX_TV_RATIO)


def _clip_stats(c: ColourPixels) -> Stats:
    ref, cand = c.levels
    newly = ((cand <= 0) & (ref > 2)) | ((cand >= 255) & (ref < 253))
    return {"newly": float(np.count_nonzero(newly)), "n": float(newly.size)}


def _clipping(stats: Stats) -> bool:
    newly = stats.get("newly", 0.0) / max(stats.get("n", 0.0), 1.0)
    return newly >= CLIP_MIN_FRACTION or stats.get("clipped_fraction", 0.0) >= \
        CLIP_MIN_OUT_OF_RANGE


_Rule = tuple[Callable[[ColourPixels], Stats], Callable[[Stats], bool]]
_RULES: dict[ArtifactKind, _Rule] = {
    ArtifactKind.TINT: (_tint_stats, _tint),
    ArtifactKind.FRINGING: (_fringe_stats, _fringing),
    ArtifactKind.SPECKLE: (_speckle_stats, _speckle),
    ArtifactKind.BANDING: (_banding_stats, _banding),
    ArtifactKind.CLIPPING: (_clip_stats, _clipping),
}


def has_tint(c: ColourPixels) -> bool:
    return _tint(_tint_stats(c))


def has_fringing(c: ColourPixels) -> bool:
    return _fringing(_fringe_stats(c))


def has_speckle(c: ColourPixels) -> bool:
    return _speckle(_speckle_stats(c))


def has_banding(c: ColourPixels) -> bool:
    return _banding(_banding_stats(c))


def has_clipping(c: ColourPixels, clipped_fraction: float = 0.0) -> bool:
    return _clipping({**_clip_stats(c), "clipped_fraction": clipped_fraction})
