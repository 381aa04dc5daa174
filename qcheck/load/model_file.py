"""A model file, before and while Keras reads it: checked, described from its config without
Keras where possible, and loaded in safe mode (the user's own code only on their opt-in)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

from qcheck.errors import ModelLoadError
from qcheck.load.heads import head_from_config
from qcheck.load.safety import inspect_h5, inspect_keras_archive
from qcheck.types import ModelInfo, TensorInfo

__all__ = ["DEFAULT_MAX_INPUT_PIXELS", "SUPPORTED", "checked_path", "config_of",
           "info_from_config", "layer_paths", "load_keras", "max_input_pixels", "one_line",
           "sha256_file", "validate_info"]

SUPPORTED = ".keras (Keras 3) or legacy .h5"
DEFAULT_MAX_INPUT_PIXELS = 4096 * 4096
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def checked_path(path: str | os.PathLike[str], *, custom: bool = False
                 ) -> tuple[Path, list[str]]:
    """The model file, checked before Keras reads it (``custom``: the user opted in to their
    own code), and notes on what will be ignored."""
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
    return file, _sniff(file, custom)


def _sniff(file: Path, custom: bool) -> list[str]:
    suffix = file.suffix.lower()
    with file.open("rb") as handle:
        head = handle.read(8)
    if suffix == ".keras":
        if not zipfile.is_zipfile(file):
            raise ModelLoadError(f"{file} is not a Keras archive (not a zip file)")
        return inspect_keras_archive(file, custom=custom)
    if suffix in (".h5", ".hdf5"):
        if head != _HDF5_SIGNATURE:
            raise ModelLoadError(f"{file} is not an HDF5 file")
        return inspect_h5(file, file, custom=custom)
    raise ModelLoadError(f"unsupported model file {file.name!r}; qcheck loads {SUPPORTED} files")


def info_from_config(file: Path, label: str, digest: str) -> ModelInfo | None:
    """Inputs and output names from a functional model's config, without importing Keras.

    Output shapes stay unknown (``(None,)``) until a worker has run the model; ``None`` means
    the config is not one this reader understands, and Keras must load the model to describe it.
    """
    config = config_of(file)
    if not isinstance(config, dict) or config.get("class_name") != "Functional":
        return None
    body = config.get("config", {})
    layers = {layer.get("name"): layer for layer in body.get("layers", [])
              if isinstance(layer, dict)}
    input_names = _layer_names(body.get("input_layers"))
    output_names = _layer_names(body.get("output_layers"))
    if input_names is None or output_names is None or len(output_names) > 1:
        return None  # several outputs: Keras tells each one's shape and final activation
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
    info = ModelInfo(label, digest, tuple(inputs), outputs, head_from_config(config),
                     tuple(layer_paths(body)))
    validate_info(info, label)
    return info


def layer_paths(body: dict[str, Any], prefix: str = "") -> list[str]:
    """Every layer's path from a functional config, nested models' layers as ``outer/inner``
    (the paths ``converters.graph.flatten`` gives the loaded model)."""
    found = []
    for layer in body.get("layers", []):
        if not isinstance(layer, dict) or layer.get("class_name") == "InputLayer":
            continue
        name = str(layer.get("name") or layer.get("config", {}).get("name"))
        inner = layer.get("config", {})
        if layer.get("class_name") in ("Functional", "Sequential", "Model") \
                and isinstance(inner, dict) and isinstance(inner.get("layers"), list):
            found.extend(layer_paths(inner, f"{prefix}{name}/"))
        else:
            found.append(prefix + name)
    return found


def _layer_names(entries: Any) -> list[str] | None:
    """``[name, 0, 0]`` for one tensor, ``[[name, 0, 0], …]`` for several."""
    if not isinstance(entries, list) or not entries:
        return None
    if isinstance(entries[0], str):
        return [entries[0]]
    if all(isinstance(e, list) and e and isinstance(e[0], str) for e in entries):
        return [e[0] for e in entries]
    return None


def config_of(file: Path) -> Any:
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


def load_keras(file: Path, custom_objects: str | None = None) -> Any:
    """Keras's own loader: safe mode, no compile config; with ``custom_objects`` (the user's
    explicit opt-in) their code is run and used, and safe mode is off."""
    from qcheck.load.custom import custom_objects as user_objects
    from qcheck.quiet import import_tensorflow

    import_tensorflow()
    import keras

    objects = user_objects(custom_objects)
    try:
        model = keras.saving.load_model(file, compile=False, safe_mode=custom_objects is None,
                                        custom_objects=objects or None)
    except Exception as exc:  # Keras raises many types for bad files; all mean "cannot load".
        message = one_line(exc)
        if "safe_mode" in message or "arbitrary code" in message:
            message = "it carries Python code, which qcheck never runs (Keras safe mode)"
        raise ModelLoadError(f"cannot load {file}: {message}") from None
    if not isinstance(model, keras.Model):
        raise ModelLoadError(f"{file} does not hold a Keras model")
    return model


def validate_info(info: ModelInfo, path: str) -> None:
    inputs = info.inputs
    shape = info.image_input.shape
    if len(shape) != 4 or shape[-1] not in (1, 3):
        shown = ", ".join(f"{t.name} {list(t.shape)}" for t in inputs)
        what = f"input shape {list(shape)} is" if len(inputs) == 1 else \
            f"inputs ({shown}) are"
        raise ModelLoadError(
            f"{path} {what} not an image (expected [batch, H, W, 3] for RGB or "
            "[batch, H, W, 1] for lightness)")
    if not info.outputs:
        raise ModelLoadError(f"{path} has no outputs")
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


def sha256_file(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(io.DEFAULT_BUFFER_SIZE * 64), b""):
            digest.update(chunk)
    return digest.hexdigest()


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first[:300]
