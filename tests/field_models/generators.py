"""Image-to-image models with custom layers and normalization, as users write them: a CycleGAN
ResNet generator (−1:1 pixels, reflection padding, instance norm, tanh) and a NAFNet-style
denoiser (LayerNorm, SimpleGate, channel attention). Small, trained for seconds."""

from __future__ import annotations

from typing import Any

import numpy as np

from tests import tiny_models
from tests.field_models.architectures import SIZE, _fit, _images


def instance_norm_generator(seed: int = 0, blocks: int = 2) -> Any:
    """keras-io CycleGAN's ResNet generator in miniature: c7s1 → downsample → residual blocks
    (reflection pad, conv, instance norm) → upsample → c7s1 with tanh; pixels in −1:1."""
    import keras
    from keras import layers

    from tests.field_models.custom_layers import ReflectionPadding2D

    keras.utils.set_random_seed(seed)
    norm = {"groups": -1, "epsilon": 1e-5}  # groups=-1: one group per channel (instance norm)
    inputs = keras.Input((SIZE, SIZE, 3), name="input_img")
    x = ReflectionPadding2D(3)(inputs)
    x = layers.Conv2D(8, 7, name="c7s1")(x)
    x = layers.Activation("relu")(layers.GroupNormalization(**norm)(x))
    x = layers.Conv2D(16, 3, strides=2, padding="same")(x)
    x = layers.Activation("relu")(layers.GroupNormalization(**norm)(x))
    for _ in range(blocks):
        h = ReflectionPadding2D(1)(x)
        h = layers.Conv2D(16, 3)(h)
        h = layers.Activation("relu")(layers.GroupNormalization(**norm)(h))
        h = ReflectionPadding2D(1)(h)
        h = layers.GroupNormalization(**norm)(layers.Conv2D(16, 3)(h))
        x = layers.Add()([x, h])
    x = layers.Conv2DTranspose(8, 3, strides=2, padding="same")(x)
    x = layers.Activation("relu")(layers.GroupNormalization(**norm)(x))
    x = ReflectionPadding2D(3)(x)
    outputs = layers.Activation("tanh")(layers.Conv2D(3, 7, name="c7s1_out")(x))
    model = keras.Model(inputs, outputs, name="generator")
    images = _images(seed=seed) * 2 - 1
    target = tiny_models.enhancement_target((images + 1) / 2) * 2 - 1
    return _fit(model, images, np.clip(target, -1, 1), epochs=4)


def nafnet_denoiser(seed: int = 0) -> Any:
    """A NAFNet block: LayerNorm → 1×1 → depthwise 3×3 → SimpleGate → simplified channel
    attention → 1×1, a residual, and the same with a feed-forward half; denoises 0:1 pixels."""
    import keras
    from keras import layers

    from tests.field_models.custom_layers import SimpleGate

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(16, 3, padding="same")(inputs)
    h = layers.LayerNormalization()(x)
    h = layers.Conv2D(32, 1)(h)
    h = layers.DepthwiseConv2D(3, padding="same")(h)
    h = SimpleGate()(h)
    attention = layers.Conv2D(16, 1)(layers.GlobalAveragePooling2D(keepdims=True)(h))
    h = layers.Multiply()([h, attention])
    x = layers.Add()([x, layers.Conv2D(16, 1)(h)])
    h = layers.Conv2D(32, 1)(layers.LayerNormalization()(x))
    x = layers.Add()([x, layers.Conv2D(16, 1)(SimpleGate()(h))])
    outputs = layers.Add()([inputs, layers.Conv2D(3, 3, padding="same")(x)])
    model = keras.Model(inputs, outputs, name="nafnet")
    clean = _images(seed=seed)
    noisy = np.clip(clean + np.random.default_rng(seed).normal(0, 0.05, clean.shape), 0, 1)
    return _fit(model, noisy.astype(np.float32), clean, epochs=4)
