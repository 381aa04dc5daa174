"""The benchmark's reference model: a MobileNetV2-style image-to-image network at 224×224."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SIZE = 224
# (expansion, channels, repeats, stride), as in MobileNetV2's first stages.
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 1), (6, 96, 3, 1))
# MobileNetV2's later stages too (at stride 1, so the head's upsampling still fits): 100 layers.
DEEP_BLOCKS = (*BLOCKS, (6, 160, 5, 1), (6, 320, 5, 1), (6, 320, 2, 1))


def build(seed: int = 0, blocks: tuple[tuple[int, int, int, int], ...] = BLOCKS) -> Any:
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = layers.Rescaling(2.0, offset=-1.0, name="normalize")(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu6", name="stem")(x)
    channels = 32
    for stage, (expansion, out, repeats, stride) in enumerate(blocks):
        for index in range(repeats):
            name = f"block{stage}_{index}"
            skip = x
            h = x
            if expansion != 1:
                h = layers.Conv2D(channels * expansion, 1, activation="relu6",
                                  name=f"{name}_expand")(h)
            h = layers.DepthwiseConv2D(3, strides=stride if index == 0 else 1, padding="same",
                                       activation="relu6", name=f"{name}_depthwise")(h)
            h = layers.Conv2D(out, 1, name=f"{name}_project")(h)
            if index > 0 or (stride == 1 and channels == out):
                h = layers.Add(name=f"{name}_add")([skip, h])
            x, channels = h, out
    x = layers.Conv2D(32, 1, activation="relu", name="head")(x)
    x = layers.UpSampling2D(8, interpolation="bilinear", name="upsample")(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="refine")(x)
    x = layers.Conv2D(3, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                      name="to_rgb")(x)
    outputs = layers.Add(name="residual")([inputs, x])
    return keras.Model(inputs, outputs, name="mobilenet_v2_style")


def save(path: Path, blocks: tuple[tuple[int, int, int, int], ...] = BLOCKS) -> int:
    model = build(blocks=blocks)
    model.save(path)
    return len(model.layers)
