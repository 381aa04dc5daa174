"""The float Keras model's own outputs: what every target is compared against.

Computed once per check (by a worker alongside the conversions, from the cache, or here as a
last resort), shared by the comparison threads under one lock, with the evaluation half also
kept in CIELAB and the per-layer calibrated ranges the analysis reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from qcheck.cache import Cache
from qcheck.errors import ModelOutputError
from qcheck.jobs import JobResult, Lane, ReferenceJob
from qcheck.keys import JobKeys
from qcheck.load.image_sets import ImageSets
from qcheck.load.model import ModelHandle
from qcheck.quiet import import_tensorflow
from qcheck.types import InputRange

__all__ = ["HALVES", "OutputReferences", "ReferenceStore"]

HALVES = ("calibration", "evaluation")


class ReferenceStore:
    def __init__(self, handle: ModelHandle, images: ImageSets, keys: JobKeys, cache: Cache,
                 workdir: Path):
        self.handle, self.images, self.keys, self.cache = handle, images, keys, cache
        self.workdir = workdir
        self._outputs: dict[str, np.ndarray] = {}
        self._lab: tuple[InputRange, np.ndarray] | None = None
        self._stats: Path | None = None
        self._views: dict[str, OutputReferences] = {}
        # Targets are compared on threads; the lazily computed references are shared by all.
        self._lock = threading.RLock()

    @property
    def ready(self) -> bool:
        return set(HALVES) <= set(self._outputs)

    def get(self, half: str) -> np.ndarray:
        """The float outputs on one half, computed once (here, if no worker or cache has
        them); the first one tells the model's output shape."""
        with self._lock:
            if half not in self._outputs:
                self._outputs[half] = self._finite(half, self._load(half))
            if not self.handle.outputs_known:
                self.handle.adopt_outputs(self._outputs[half])
                self.cache.put_json(JobKeys.model_info(self.handle.info.sha256), "model.json",
                                    self.handle.info.cached())
            return self._outputs[half]

    def lab(self, output_range: InputRange) -> np.ndarray:
        """The evaluation half in CIELAB (read in ``output_range``), shared by every target's
        comparison."""
        with self._lock:
            self._lab = _in_lab(self._lab, lambda: self.get("evaluation"), output_range)
            return self._lab[1]

    def view(self, select: Callable[[np.ndarray], np.ndarray], name: str) -> OutputReferences:
        """The references of one of several outputs (``select`` picks it out of the packed
        outputs), one view per output for the whole check."""
        with self._lock:
            if name not in self._views:
                self._views[name] = OutputReferences(self, select, name)
            return self._views[name]

    def job(self, stats: bool = False) -> ReferenceJob | None:
        """A worker job for both halves (and, with ``stats``, every layer's calibrated range),
        unless the cache already has the outputs; it runs in the TensorFlow lane."""
        keys = [self.keys.reference(half) for half in HALVES]
        if all(self.cache.get_file(k, "reference.npy") for k in keys):
            # Only the ranges missing: the analysis records them itself (it loads the model
            # anyway), rather than a worker loading TensorFlow for them.
            return None
        return ReferenceJob(key=f"reference-{keys[1][:16]}", target="reference",
                            model_path=str(self.handle.path.resolve()),
                            signed_io=self.keys.signed_io, lane=Lane.TENSORFLOW, stats=stats,
                            custom_objects=self.handle.custom_objects,
                            input_size=self.keys.input_size)

    def adopt(self, result: JobResult) -> None:
        """Take a worker's reference outputs and ranges (and cache them)."""
        if result.stats is not None:
            self._stats = result.stats
            self.cache.put_file(self.keys.reference("calibration"), "stats.npz", result.stats)
        if result.error is not None or result.calibration_outputs is None \
                or result.outputs is None:
            return
        with self._lock:
            for half, path in zip(HALVES, (result.calibration_outputs, result.outputs),
                                  strict=True):
                self.cache.put_file(self.keys.reference(half), "reference.npy", path)
                self._outputs[half] = self._finite(half, np.load(path, mmap_mode="r"))
        self.get("evaluation")  # learns the output shape, which decides image or tensor

    def stats_file(self) -> Path | None:
        """Per-layer calibrated ranges a worker (or the analysis) recorded, if any."""
        return self.cache.read(self.keys.reference("calibration"), "stats.npz",
                               _readable_stats) or self._stats

    def keep_stats(self, write: Callable[[Path], None]) -> None:
        """Cache per-layer calibrated ranges recorded in this process (``write`` saves them)."""
        path = self.workdir / "calibration-stats.npz"
        write(path)
        self._stats = path
        self.cache.put_file(self.keys.reference("calibration"), "stats.npz", path)

    def _finite(self, half: str, outputs: np.ndarray) -> np.ndarray:
        """The float model's own outputs must be numbers: NaN or infinity there is bad input
        (exit 2), named by image."""
        names = self.images.half(half).names
        bad = [name for name, row in zip(names, outputs, strict=True)
               if not np.isfinite(np.asarray(row)).all()]
        if bad:
            shown = ", ".join(bad[:3]) + (", …" if len(bad) > 3 else "")
            raise ModelOutputError(
                f"the float model's own output is not finite (NaN or infinity) on {len(bad)} "
                f"of {len(names)} {half} images ({shown}); qcheck compares targets against "
                "it, so fix the model first")
        return outputs

    def _load(self, half: str) -> np.ndarray:
        key = self.keys.reference(half)
        stored = self.cache.get_array(key, "reference.npy", mmap=True)
        if stored is not None and len(stored) == len(self.images.half(half)):
            return stored
        import_tensorflow()
        from qcheck.runners import KerasRunner

        with KerasRunner(self.handle.model) as runner:
            outputs = runner.infer_all(self.images.feed(half))
        self.cache.put_array(key, "reference.npy", outputs)
        return outputs


class OutputReferences:
    """One output's float references, picked out of the packed ones; everything else is the
    whole store's."""

    def __init__(self, store: ReferenceStore, select: Callable[[np.ndarray], np.ndarray],
                 name: str):
        self.store, self.select, self.name = store, select, name
        self._lab: tuple[InputRange, np.ndarray] | None = None
        self._lock = threading.Lock()

    def __getattr__(self, attribute: str) -> object:
        return getattr(self.store, attribute)

    def get(self, half: str) -> np.ndarray:
        return self.select(self.store.get(half))

    def lab(self, output_range: InputRange) -> np.ndarray:
        with self._lock:
            self._lab = _in_lab(self._lab, lambda: self.get("evaluation"), output_range)
            return self._lab[1]


def _in_lab(held: tuple[InputRange, np.ndarray] | None, evaluation: Callable[[], np.ndarray],
            output_range: InputRange) -> tuple[InputRange, np.ndarray]:
    """``held`` if it was read in ``output_range``, else the evaluation half in CIELAB now."""
    if held is not None and held[0] == output_range:
        return held
    from qcheck.compare.metrics import reference_lab

    return output_range, reference_lab(evaluation(), output_range)


def _readable_stats(path: Path) -> Path:
    from qcheck.stats import load_stats

    load_stats(path)  # raises on a file it cannot read: the cache drops it
    return path

