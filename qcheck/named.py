"""Named tensors for models with several inputs or outputs.

A batch for a one-input model is an array; for a model with several inputs it is a dict of
arrays by the Keras input names. Runners return one array per batch whatever the model: a
model with several outputs has them packed side by side, each sample's outputs flattened and
concatenated in the model's output order, so every job, cache entry and reference stores one
``.npy`` as before; ``OutputLayout`` unpacks them by name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from converters.graph import input_names

__all__ = ["Batch", "OutputLayout", "batch_length", "batch_rows", "concat_batches",
           "model_input_names", "model_inputs", "ordered", "pack_outputs", "sample_rows"]

Batch = np.ndarray | Mapping[str, np.ndarray]


def batch_length(batch: Batch) -> int:
    if isinstance(batch, Mapping):
        return len(next(iter(batch.values())))
    return len(batch)


def batch_rows(batch: Batch, rows: Any) -> Batch:
    """``rows`` (a slice or indices) of every tensor of the batch."""
    if isinstance(batch, Mapping):
        return {name: np.asarray(array)[rows] for name, array in batch.items()}
    return np.asarray(batch)[rows]


def concat_batches(batches: Sequence[Batch]) -> Batch:
    first = batches[0]
    if isinstance(first, Mapping):
        mappings = [b for b in batches if isinstance(b, Mapping)]
        return {name: np.concatenate([np.asarray(b[name]) for b in mappings]) for name in first}
    return np.concatenate(batches)  # type: ignore[arg-type]


def sample_rows(batch: Batch) -> Iterator[Batch]:
    """One sample at a time, each with a batch axis of 1."""
    for index in range(batch_length(batch)):
        yield batch_rows(batch, slice(index, index + 1))


def ordered(batch: Batch, names: Sequence[str]) -> list[np.ndarray]:
    """The batch's tensors in the order ``names`` lists the inputs (a one-input batch is its
    array whatever the name)."""
    if not isinstance(batch, Mapping):
        return [np.asarray(batch)]
    missing = [name for name in names if name not in batch]
    if missing:
        raise KeyError(f"no value fed for input {missing[0]!r} (fed: {', '.join(batch)})")
    return [np.asarray(batch[name]) for name in names]


def model_input_names(model: Any) -> list[str]:
    """A Keras model's inputs by their InputLayer names, in the model's order (a subclassed
    model: its one image input)."""
    return input_names(model) or ["image"]


def model_inputs(model: Any, batch: Batch) -> Any:
    """What a Keras model (or a graph run of it) takes for ``batch``: the array, or the list
    of arrays in the model's input order."""
    if not isinstance(batch, Mapping):
        return batch
    arrays = ordered(batch, model_input_names(model))
    return arrays if len(arrays) > 1 else arrays[0]


def pack_outputs(outputs: Sequence[np.ndarray]) -> np.ndarray:
    """One output as it is; several flattened per sample and concatenated, in order."""
    if len(outputs) == 1:
        return np.asarray(outputs[0], dtype=np.float32)
    count = len(outputs[0])
    return np.concatenate([np.asarray(o, dtype=np.float32).reshape(count, -1) for o in outputs],
                          axis=1)


@dataclass(frozen=True)
class OutputLayout:
    """The model's outputs, by name and per-sample shape, in the packed order."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @property
    def packed(self) -> bool:
        return len(self.names) > 1

    def output(self, packed: np.ndarray, name: str) -> np.ndarray:
        """One output's array, read from its own columns of ``packed`` (which may be
        memory-mapped) and no other's."""
        if not self.packed:
            return packed
        sizes = [int(np.prod(shape)) for shape in self.shapes]
        if sum(sizes) != packed.shape[1]:
            raise ValueError(f"the outputs hold {packed.shape[1]} values per sample; the "
                             f"model's {len(self.names)} outputs {self.describe()} hold "
                             f"{sum(sizes)}")
        index = self.names.index(name)
        start = sum(sizes[:index])
        return packed[:, start:start + sizes[index]].reshape(len(packed), *self.shapes[index])

    def describe(self) -> str:
        return ", ".join(f"{n} {'×'.join(str(d) for d in s)}"
                         for n, s in zip(self.names, self.shapes, strict=True))
