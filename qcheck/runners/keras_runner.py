"""The float reference: the user's Keras model itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from qcheck.runners.base import BaseRunner

if TYPE_CHECKING:
    import keras

__all__ = ["KerasRunner"]


class KerasRunner(BaseRunner):
    name = "keras"

    def __init__(self, model: keras.Model):
        super().__init__()
        self.model = model

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(batch, training=False))
