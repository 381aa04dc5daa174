"""Load a Keras model without ever running code from the file."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qcheck.errors import ModelLoadError
from qcheck.load.heads import head_from_config, head_of_model
from qcheck.load.safety import inspect_h5, inspect_keras_archive
from qcheck.types import ModelInfo, TensorInfo

if TYPE_CHECKING:
    import keras

__all__ = ["LoadedModel", "ModelHandle", "load_model", "model_from_memory"]

SUPPORTED = ".keras (Keras 3) or legacy .h5"
DEFAULT_MAX_INPUT_PIXELS = 4096 * 4096
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


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

    def __init__(self, path: Path, info: ModelInfo, loaded: LoadedModel | None = None):
        self.path = path
        self.info = info
        self._loaded = loaded

    def load_now(self) -> None:
        """Load (and so validate) the model in this process."""
        if self._loaded is None:
            self._loaded = load_model(self.path)

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
    def open(cls, source: Any, workdir: Path, known: Callable[[str], ModelInfo | None]
             ) -> ModelHandle:
        """``source`` is a path or an in-memory ``keras.Model``; ``known`` looks up by hash."""
        if isinstance(source, str | os.PathLike):
            file = _checked_path(source)
            digest = _sha256_file(file)
            info = known(digest)
            if info is not None:
                return cls(file, replace(info, path=str(source), sha256=digest))
            described = _info_from_config(file, str(source), digest)
            if described is not None:
                return cls(file, described)
            loaded = _describe(_load_keras(file), str(source), digest)
            return cls(file, loaded.info, loaded)
        loaded = model_from_memory(source)
        file = workdir / "model.keras"
        loaded.model.save(file)
        return cls(file, loaded.info, loaded)


def load_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Load ``path`` in Keras safe mode and check it is a model qcheck can handle."""
    file = _checked_path(path)
    return _describe(_load_keras(file), str(file), _sha256_file(file))


def _info_from_config(file: Path, label: str, digest: str) -> ModelInfo | None:
    """Inputs and output names from a functional model's config, without importing Keras.

    Output shapes stay unknown (``(None,)``) until a worker has run the model; ``None`` means
    the config is not one this reader understands, and Keras must load the model to describe it.
    """
    config = _config(file)
    if not isinstance(config, dict) or config.get("class_name") != "Functional":
        return None
    body = config.get("config", {})
    layers = {layer.get("name"): layer for layer in body.get("layers", [])
              if isinstance(layer, dict)}
    input_names = _layer_names(body.get("input_layers"))
    output_names = _layer_names(body.get("output_layers"))
    if input_names is None or output_names is None:
        return None
    inputs = []
    for name in input_names:
        layer_config = layers.get(name, {}).get("config", {})
        shape = layer_config.get("batch_shape") or layer_config.get("batch_input_shape")
        if shape is None:
            return None
        dtype = layer_config.get("dtype", "float32")
        if isinstance(dtype, dict):
            dtype = dtype.get("config", {}).get("name", "float32")
        inputs.append(TensorInfo(str(name), tuple(shape), str(dtype)))
    outputs = tuple(TensorInfo(str(name), (None,), "float32") for name in output_names)
    info = ModelInfo(label, digest, tuple(inputs), outputs, head_from_config(config))
    _validate(info, label)
    return info


def _layer_names(entries: Any) -> list[str] | None:
    """``[name, 0, 0]`` for one tensor, ``[[name, 0, 0], …]`` for several."""
    if not isinstance(entries, list) or not entries:
        return None
    if isinstance(entries[0], str):
        return [entries[0]]
    if all(isinstance(e, list) and e and isinstance(e[0], str) for e in entries):
        return [e[0] for e in entries]
    return None


def _config(file: Path) -> Any:
    import json

    try:
        if file.suffix.lower() == ".keras":
            with zipfile.ZipFile(file) as archive:
                return json.loads(archive.read("config.json"))
        import h5py

        with h5py.File(file, "r") as handle:
            raw = handle.attrs.get("model_config")
            if raw is None:
                return None
            return json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def _checked_path(path: str | os.PathLike[str]) -> Path:
    text = os.fspath(path)
    if "://" in text:
        raise ModelLoadError(f"remote model URIs are not supported: {text!r}; pass a local file")
    file = Path(text)
    try:
        mode = file.stat().st_mode
    except FileNotFoundError:
        raise ModelLoadError(f"model not found: {text}") from None
    except OSError as exc:
        raise ModelLoadError(f"cannot read the model {text}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise ModelLoadError(
            f"{text} is a folder (SavedModel folders are not supported); pass a {SUPPORTED} file"
        )
    if not stat.S_ISREG(mode):  # a FIFO or a device would block or never end
        raise ModelLoadError(f"{text} is not a regular file; pass a {SUPPORTED} file")
    _sniff(file)
    return file


def model_from_memory(model: keras.Model) -> LoadedModel:
    """Wrap an in-memory model, hashing its architecture and weights for the report and caches."""
    digest = hashlib.sha256(model.to_json().encode())
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return _describe(model, f"<in-memory {model.name}>", digest.hexdigest())


def _sniff(file: Path) -> None:
    suffix = file.suffix.lower()
    with file.open("rb") as handle:
        head = handle.read(8)
    if suffix == ".keras":
        if not zipfile.is_zipfile(file):
            raise ModelLoadError(f"{file} is not a Keras archive (not a zip file)")
        inspect_keras_archive(file)
        return
    if suffix in (".h5", ".hdf5"):
        if head != _HDF5_SIGNATURE:
            raise ModelLoadError(f"{file} is not an HDF5 file")
        inspect_h5(file, file)
        return
    raise ModelLoadError(f"unsupported model file {file.name!r}; qcheck loads {SUPPORTED} files")


def _load_keras(file: Path) -> keras.Model:
    from qcheck.quiet import import_tensorflow

    import_tensorflow()
    import keras

    try:
        model = keras.saving.load_model(file, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for bad files; all mean "cannot load".
        message = _one_line(exc)
        if "safe_mode" in message or "arbitrary code" in message:
            message = "it carries Python code, which qcheck never runs (Keras safe mode)"
        raise ModelLoadError(f"cannot load {file}: {message}") from None
    if not isinstance(model, keras.Model):
        raise ModelLoadError(f"{file} does not hold a Keras model")
    return model


def _describe(model: Any, path: str, sha256: str) -> LoadedModel:
    try:
        model_inputs, model_outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError, TypeError):
        model_inputs = model_outputs = []
    if not model_inputs or not model_outputs:
        raise ModelLoadError(f"{path} has no inputs or outputs (an empty or unbuilt model); "
                             "qcheck needs a model with a declared image input")
    inputs = tuple(_tensor_info(t) for t in model_inputs)
    # Keras names output tensors "keras_tensor_N"; the producing layer's name is what users know.
    names = list(getattr(model, "output_names", None) or [t.name for t in model.outputs])
    outputs = tuple(_tensor_info(t, name) for t, name in zip(model_outputs, names, strict=False))
    info = ModelInfo(path, sha256, inputs, outputs, head_of_model(model))
    _validate(info, path)
    return LoadedModel(model=model, info=info)


def _validate(info: ModelInfo, path: str) -> None:
    inputs, outputs = info.inputs, info.outputs
    if len(inputs) != 1:
        raise ModelLoadError(
            f"{path} has {len(inputs)} inputs; qcheck supports single-input image models"
        )
    shape = inputs[0].shape
    if len(shape) != 4 or shape[-1] not in (1, 3):
        raise ModelLoadError(
            f"{path} input shape {list(shape)} is not an image (expected [batch, H, W, 3] for "
            "RGB or [batch, H, W, 1] for lightness)")
    if len(outputs) != 1:
        raise ModelLoadError(f"{path} has {len(outputs)} outputs; qcheck supports one output")
    height, width = shape[1], shape[2]
    if height is not None and width is not None and height * width > max_input_pixels():
        raise ModelLoadError(
            f"{path} declares a {height}×{width} input ({height * width} pixels), more than "
            f"qcheck feeds by default ({max_input_pixels()}); set QCHECK_MAX_INPUT_PIXELS to "
            "allow it")


def max_input_pixels() -> int:
    """The largest declared input qcheck resamples images to (``QCHECK_MAX_INPUT_PIXELS``)."""
    try:
        return int(os.environ.get("QCHECK_MAX_INPUT_PIXELS") or DEFAULT_MAX_INPUT_PIXELS)
    except ValueError:
        return DEFAULT_MAX_INPUT_PIXELS


def _tensor_info(tensor: Any, name: str | None = None) -> TensorInfo:
    shape = tuple(None if d is None else int(d) for d in tensor.shape)
    return TensorInfo(name=str(name or tensor.name), shape=shape, dtype=str(tensor.dtype))


def _sha256_file(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(io.DEFAULT_BUFFER_SIZE * 64), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first[:300]
