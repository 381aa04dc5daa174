"""The float reference: the user's Keras model itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from qcheck.named import Batch, model_input_names, ordered
from qcheck.runners.base import BaseRunner

if TYPE_CHECKING:
    import keras

__all__ = ["KerasRunner"]


class KerasRunner(BaseRunner):
    """Runs the model through a traced ``tf.function`` (a third of eager Keras's time on a
    MobileNet-sized model, and the same outputs); ``function`` shares a trace made elsewhere,
    such as the one the converters export."""

    name = "keras"

    def __init__(self, model: keras.Model | None, function: Callable[..., Any] | None = None,
                 input_names: list[str] | None = None):
        super().__init__()
        self.model = model
        self._function = function
        self._input_names = input_names  # the function's inputs, in its order

    def activate_impl(self) -> None:
        if self._function is None:
            import tensorflow as tf

            model: Any = self.model  # functional or subclassed: traced per batch shape
            if len(self.input_names) > 1:
                self._function = tf.function(lambda *inputs: model(list(inputs),
                                                                   training=False))
            else:
                self._function = tf.function(lambda image: model(image, training=False))

    @property
    def input_names(self) -> list[str]:
        return self._input_names or model_input_names(self.model)

    def infer_impl(self, batch: Batch) -> np.ndarray | list[np.ndarray]:
        assert self._function is not None
        result = self._function(*ordered(batch, self.input_names))
        if isinstance(result, list | tuple):
            return [np.asarray(r) for r in result] if len(result) > 1 else np.asarray(result[0])
        return np.asarray(result)
