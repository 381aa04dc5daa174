"""A user's own Keras code, as ``--custom-objects`` takes it: a registered pixel-shuffle layer
(what keras-io's ESPCN does with ``tf.nn.depth_to_space``) and a subclassed model."""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="field_models")
class DepthToSpace(keras.layers.Layer):
    def __init__(self, factor: int = 2, **kwargs: Any):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs: Any) -> Any:
        return keras.ops.depth_to_space(inputs, self.factor) if hasattr(
            keras.ops, "depth_to_space") else _shuffle(inputs, self.factor)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor}


def _shuffle(inputs: Any, factor: int) -> Any:
    batch, height, width, channels = keras.ops.shape(inputs)
    depth = channels // (factor * factor)
    x = keras.ops.reshape(inputs, (batch, height, width, factor, factor, depth))
    x = keras.ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return keras.ops.reshape(x, (batch, height * factor, width * factor, depth))


@keras.saving.register_keras_serializable(package="field_models")
class TinyEnhancer(keras.Model):
    """A subclassed image-to-image model: two convolutions and a residual."""

    def __init__(self, width: int = 8, **kwargs: Any):
        super().__init__(**kwargs)
        self.width = width
        self.first = keras.layers.Conv2D(width, 3, padding="same", activation="relu")
        self.to_rgb = keras.layers.Conv2D(3, 1)

    def call(self, inputs: Any) -> Any:
        return inputs + self.to_rgb(self.first(inputs))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "width": self.width}


@keras.saving.register_keras_serializable(package="field_models")
class ReflectionPadding2D(keras.layers.Layer):
    """CycleGAN's reflection padding (keras-io's CycleGAN example defines the same layer)."""

    def __init__(self, padding: int = 1, **kwargs: Any):
        super().__init__(**kwargs)
        self.padding = padding

    def call(self, inputs: Any) -> Any:
        p = self.padding
        return keras.ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, shape: Any) -> Any:
        grown = [None if n is None else n + 2 * self.padding for n in shape[1:3]]
        return (shape[0], *grown, shape[3])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package="field_models")
class SimpleGate(keras.layers.Layer):
    """NAFNet's gate: the channels split in two halves, multiplied."""

    def call(self, inputs: Any) -> Any:
        first, second = keras.ops.split(inputs, 2, axis=-1)
        return first * second

    def compute_output_shape(self, shape: Any) -> Any:
        return (*shape[:-1], shape[-1] // 2)
