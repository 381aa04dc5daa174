"""The common shape of every backend: activate, infer batches, deactivate."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

import numpy as np

from qcheck.named import Batch, pack_outputs

__all__ = ["ArtifactRunner", "BaseRunner"]


class BaseRunner(ABC):
    """A backend that maps float32 input batches to float32 output batches.

    Subclasses override the ``*_impl`` methods; quantized I/O is the subclass's business, so
    callers only ever see floats in the model's own value ranges. A model with several inputs
    takes a dict of arrays by input name; one with several outputs returns them packed
    (``qcheck.named``).
    """

    name: str = "runner"

    def __init__(self) -> None:
        self.is_active = False

    def activate(self) -> None:
        if not self.is_active:
            self.activate_impl()
            self.is_active = True

    def deactivate(self) -> None:
        if self.is_active:
            self.deactivate_impl()
            self.is_active = False

    def infer(self, batch: Batch) -> np.ndarray:
        if not self.is_active:
            raise RuntimeError(f"{self.name}: infer() before activate()")
        if isinstance(batch, Mapping):
            fed: Batch = {name: np.ascontiguousarray(array, dtype=np.float32)
                          for name, array in batch.items()}
        else:
            fed = np.ascontiguousarray(batch, dtype=np.float32)
        result = self.infer_impl(fed)
        if isinstance(result, list | tuple):
            return pack_outputs(result)
        return np.asarray(result, dtype=np.float32)

    def infer_all(self, batches: Iterable[Batch]) -> np.ndarray:
        return np.concatenate([self.infer(batch) for batch in batches], axis=0)

    def infer_to_file(self, batches: Iterable[Batch], count: int, path: Path) -> None:
        """Write the outputs of ``count`` samples to a ``.npy`` file batch by batch, so memory
        holds one batch however many samples there are."""
        stored: np.ndarray | None = None
        done = 0
        for batch in batches:
            result = self.infer(batch)
            if stored is None:
                stored = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                                   shape=(count, *result.shape[1:]))
            stored[done:done + len(result)] = result
            done += len(result)
        if stored is None or done != count:
            raise ValueError(f"{self.name}: expected {count} outputs, produced {done}")
        del stored  # unmapping writes it out

    def __enter__(self) -> BaseRunner:
        self.activate()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.deactivate()

    def activate_impl(self) -> None:  # noqa: B027 - optional hook
        """Load sessions or interpreters."""

    def deactivate_impl(self) -> None:  # noqa: B027 - optional hook
        """Release what ``activate_impl`` loaded."""

    @abstractmethod
    def infer_impl(self, batch: Batch) -> np.ndarray | list[np.ndarray]:
        """One float32 batch in (a dict by input name for several inputs), one float32 batch
        out (a list in the model's output order for several outputs)."""


class ArtifactRunner(BaseRunner):
    """A runner of a converted artifact, held as bytes."""

    def __init__(self, model_content: bytes, num_threads: int | None = None):
        super().__init__()
        self.model_content = model_content
        self.num_threads = num_threads
