"""The float reference: the user's Keras model itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from qcheck.runners.base import BaseRunner

if TYPE_CHECKING:
    import keras

__all__ = ["KerasRunner"]


class KerasRunner(BaseRunner):
    """Runs the model through a traced ``tf.function`` (a third of eager Keras's time on a
    MobileNet-sized model, and the same outputs); ``function`` shares a trace made elsewhere,
    such as the one the converters export."""

    name = "keras"

    def __init__(self, model: keras.Model, function: Callable[[Any], Any] | None = None):
        super().__init__()
        self.model = model
        self._function = function

    def activate_impl(self) -> None:
        if self._function is None:
            import tensorflow as tf

            model = self.model  # functional or subclassed: traced per batch shape
            self._function = tf.function(lambda image: model(image, training=False))

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        assert self._function is not None
        return np.asarray(self._function(np.asarray(batch, dtype=np.float32)))
