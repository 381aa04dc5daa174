"""The user's own Keras code (``--custom-objects FILE.py``): an explicit opt-in to run it.

The file is run once per process (qcheck's workers run it too, to load the model); every class
it defines that Keras can deserialize (layers, models, losses, metrics, initializers, …) and
any ``custom_objects`` dict it defines are handed to Keras. Classes registered with
``keras.saving.register_keras_serializable`` register themselves as the file runs.
"""

from __future__ import annotations

import functools
import hashlib
import runpy
from pathlib import Path
from typing import Any

from qcheck.errors import UsageError

__all__ = ["code_digest", "custom_objects"]


def _checked(path: str) -> Path:
    file = Path(path)
    if file.suffix != ".py" or not file.is_file():
        raise UsageError(f"--custom-objects {path!r} must be an existing .py file of your own "
                         "layers and models")
    return file.resolve()


def code_digest(path: str | None) -> str | None:
    """The file's content hash: the user's code changes what a model computes."""
    return None if path is None else hashlib.sha256(_checked(path).read_bytes()).hexdigest()


@functools.cache
def custom_objects(path: str | None) -> dict[str, Any]:
    """Run ``path`` and collect what Keras may need to load a model that uses it."""
    if path is None:
        return {}
    file = _checked(path)
    import keras

    try:
        namespace = runpy.run_path(str(file), run_name="qcheck_custom_objects")
    except Exception as exc:  # the user's code: whatever it raises is theirs to fix
        raise UsageError(f"--custom-objects {path}: running it raised "
                         f"{type(exc).__name__}: {exc}") from None
    kinds = (keras.layers.Layer, keras.losses.Loss, keras.metrics.Metric,
             keras.initializers.Initializer, keras.regularizers.Regularizer,
             keras.constraints.Constraint)
    found = {name: value for name, value in namespace.items()
             if isinstance(value, type) and issubclass(value, kinds)}
    found.update(namespace.get("custom_objects") or {})
    return found
