"""Load a Keras model without ever running code from the file (unless the user opts in), and
hand every worker a file it can load."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from converters.graph import flatten, input_names, is_graph_model
from qcheck.errors import ModelLoadError
from qcheck.load.heads import head_of_model
from qcheck.load.model_file import (
    checked_path,
    info_from_config,
    load_keras,
    sha256_file,
    validate_info,
)
from qcheck.load.safety import inspect_keras_archive
from qcheck.types import ModelInfo, TensorInfo

if TYPE_CHECKING:
    import keras

__all__ = ["GRAPH_SUFFIX", "LoadedModel", "ModelHandle", "load_model", "model_from_memory"]

# An in-memory model that no worker could load from a .keras file (subclassed, or with
# unregistered custom layers) is handed over as its frozen TensorFlow graph.
GRAPH_SUFFIX = ".pb"


@dataclass(frozen=True)
class LoadedModel:
    model: keras.Model
    info: ModelInfo

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return self.info.input_shape


class ModelHandle:
    """A model qcheck has validated, as a file workers can load, with Keras loaded only on need.

    When the cache already knows a file's content (same SHA-256) its description comes from
    there, and TensorFlow is not imported unless something needs the weights.
    """

    def __init__(self, path: Path, info: ModelInfo, loaded: LoadedModel | None = None,
                 custom_objects: str | None = None, notes: tuple[str, ...] = ()):
        self.path = path
        self.info = info
        self._loaded = loaded
        self.custom_objects = custom_objects
        self.notes = notes  # what qcheck ignores of the file, to say once

    def load_now(self) -> None:
        """Load (and so validate) the model in this process."""
        if self._loaded is None:
            self._loaded = load_model(self.path, self.custom_objects)

    @property
    def outputs_known(self) -> bool:
        return all(len(t.shape) > 1 for t in self.info.outputs)

    def adopt_outputs(self, reference: Any) -> None:
        """Output shapes learned from the float outputs a worker computed."""
        shape = (None, *tuple(int(d) for d in reference.shape[1:]))
        outputs = tuple(TensorInfo(t.name, shape, t.dtype) for t in self.info.outputs)
        self.info = replace(self.info, outputs=outputs)

    @property
    def model(self) -> keras.Model:
        self.load_now()
        assert self._loaded is not None
        return self._loaded.model

    @classmethod
    def open(cls, source: Any, workdir: Path, known: Callable[[str], ModelInfo | None],
             custom_objects: str | None = None) -> ModelHandle:
        """``source`` is a path or an in-memory ``keras.Model``; ``known`` looks up by hash."""
        if isinstance(source, str | os.PathLike):
            file, notes = checked_path(source, custom=custom_objects is not None)
            digest = sha256_file(file)
            info = known(digest)
            if info is not None:
                return cls(file, replace(info, path=str(source), sha256=digest),
                           custom_objects=custom_objects, notes=tuple(notes))
            described = info_from_config(file, str(source), digest)
            if described is None:
                loaded = _describe(load_keras(file, custom_objects), str(source), digest)
                return cls(file, loaded.info, loaded, custom_objects, tuple(notes))
            return cls(file, described, custom_objects=custom_objects, notes=tuple(notes))
        loaded = model_from_memory(source)
        return cls(_materialized(loaded, workdir), loaded.info, loaded, custom_objects)


def load_model(path: str | os.PathLike[str], custom_objects: str | None = None) -> LoadedModel:
    """Load ``path`` (in Keras safe mode unless the user gave their own code) and check it is a
    model qcheck can handle."""
    file, _ = checked_path(path, custom=custom_objects is not None)
    return _describe(load_keras(file, custom_objects), str(file), sha256_file(file))


def model_from_memory(model: Any) -> LoadedModel:
    """Wrap an in-memory model, hashing its architecture and weights for the report and caches."""
    digest = hashlib.sha256(type(model).__qualname__.encode())
    # A subclassed model without a config: its class and weights identify it.
    with contextlib.suppress(Exception):
        digest.update(model.to_json().encode())
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return _describe(model, f"<in-memory {model.name}>", digest.hexdigest())


def _materialized(loaded: LoadedModel, workdir: Path) -> Path:
    """A file the workers can load: a .keras of Keras's own layers, else the frozen graph."""
    model = loaded.model
    if is_graph_model(model):
        file = workdir / "model.keras"
        try:
            model.save(file)
            inspect_keras_archive(file)
            return file
        except Exception:  # custom or unregistered code: the graph carries what it computes
            file.unlink(missing_ok=True)
    import converters

    file = workdir / f"model{GRAPH_SUFFIX}"
    converters.ConversionSource(model, loaded.input_shape).save_graph(file)
    return file


def _describe(model: Any, path: str, sha256: str) -> LoadedModel:
    inputs, outputs = _signature(model, path)
    layers = tuple(layer.path for layer in flatten(model)) if is_graph_model(model) else ()
    heads = tuple(head_of_model(model, i) for i in range(len(outputs))) \
        if len(outputs) > 1 else ()
    info = ModelInfo(path, sha256, inputs, outputs, head_of_model(model), layers, heads)
    validate_info(info, path)
    return LoadedModel(model=model, info=info)


def _signature(model: Any, path: str) -> tuple[tuple[TensorInfo, ...], tuple[TensorInfo, ...]]:
    """Inputs and outputs of a functional model, or of a subclassed one from the shape it
    was built with (its output shape is learned from its first outputs)."""
    try:
        model_inputs, model_outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError, TypeError):
        model_inputs = model_outputs = []
    if model_inputs and model_outputs:
        # Keras names output tensors "keras_tensor_N"; the layer's name is what users know.
        names = list(getattr(model, "output_names", None) or [t.name for t in model_outputs])
        # Inputs by their InputLayer's name (``mask``, ``input_layer_1``): what the config
        # and ``model.summary()`` call them, and what ``--feed`` takes.
        named = input_names(model) or [str(t.name) for t in model_inputs]
        return (tuple(_tensor_info(t, n) for t, n in zip(model_inputs, named, strict=True)),
                tuple(_tensor_info(t, n) for t, n in zip(model_outputs, names, strict=False)))
    built = (getattr(model, "_build_shapes_dict", None) or {}).get("input_shape")
    if built is None or not getattr(model, "built", False):
        raise ModelLoadError(f"{path} has no inputs or outputs (an empty or unbuilt model); "
                             "qcheck needs a model with a declared image input (call a "
                             "subclassed model once on an image batch first)")
    shape = (None, *tuple(None if d is None else int(d) for d in tuple(built)[1:]))
    return (TensorInfo("image", shape, "float32"),), (TensorInfo(model.name, (None,),
                                                                  "float32"),)


def _tensor_info(tensor: Any, name: str | None = None) -> TensorInfo:
    shape = tuple(None if d is None else int(d) for d in tensor.shape)
    return TensorInfo(name=str(name or tensor.name), shape=shape, dtype=str(tensor.dtype))
