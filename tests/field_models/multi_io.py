"""Models with several inputs or outputs, small versions of what mobile teams ship, built in
code and trained for seconds, with Keras's default layer names except where a name is the
point:

- ``inpainting_net``: image + binary mask (1 = keep), a plain-concatenation inpainter whose
  output keeps the known pixels and fills the hole (``Rescaling(-1, 1)`` makes ``1 − mask``).
- ``ffdnet_denoiser``: image + noise-level map (σ per pixel, FFDNet's second input), a
  residual denoiser.
- ``two_head``: one image in, an enhanced RGB image and a 1-channel sigmoid confidence out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests import tiny_models
from tests.field_models.architectures import _fit, _images, _luma

SIZE = 32


def masks(count: int, seed: int = 0) -> np.ndarray:
    """Binary masks (1 = known pixel) with one rectangular hole each."""
    rng = np.random.default_rng(seed)
    found = np.ones((count, SIZE, SIZE, 1), np.float32)
    for mask in found:
        top, left = rng.integers(2, SIZE // 2, size=2)
        height, width = rng.integers(6, SIZE // 2, size=2)
        mask[top:top + height, left:left + width] = 0.0
    return found


def noise_levels(count: int, seed: int = 0) -> np.ndarray:
    """A noise-level map per image: one σ (in 0:1 pixel units) everywhere, as FFDNet feeds."""
    sigma = np.random.default_rng(seed).uniform(0.02, 0.12, size=count).astype(np.float32)
    return np.broadcast_to(sigma[:, None, None, None], (count, SIZE, SIZE, 1)).copy()


def inpainting_net() -> Any:
    import keras

    keras.utils.set_random_seed(3)
    image = keras.Input((SIZE, SIZE, 3))
    mask = keras.Input((SIZE, SIZE, 1), name="mask")
    known = keras.layers.Multiply()([image, mask])
    x = keras.layers.Concatenate()([known, mask])
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", dilation_rate=2)(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    fill = keras.layers.Conv2D(3, 3, padding="same", activation="sigmoid")(x)
    hole = keras.layers.Rescaling(-1.0, offset=1.0)(mask)
    outputs = keras.layers.Add()([known, keras.layers.Multiply()([fill, hole])])
    model = keras.Model([image, mask], outputs, name="inpainter")
    images = _images()
    return _fit(model, [images, masks(len(images), seed=1)], images)


def ffdnet_denoiser() -> Any:
    import keras

    keras.utils.set_random_seed(4)
    image = keras.Input((SIZE, SIZE, 3))
    sigma = keras.Input((SIZE, SIZE, 1), name="noise_level")
    x = keras.layers.Concatenate()([image, sigma])
    x = keras.layers.Conv2D(24, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(24, 3, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    residual = keras.layers.Conv2D(3, 3, padding="same")(x)
    outputs = keras.layers.Subtract()([image, residual])
    model = keras.Model([image, sigma], outputs, name="ffdnet")
    clean = _images()
    levels = noise_levels(len(clean), seed=2)
    noisy = clean + np.random.default_rng(5).normal(size=clean.shape).astype(np.float32) * levels
    return _fit(model, [np.clip(noisy, 0, 1), levels], clean)


def two_head(outlier: float | None = None) -> Any:
    """With ``outlier``, one channel of the confidence branch's convolution is that many times
    wider (and its reader divides it back): the float model is unchanged, and only the
    confidence head's quantization sees it."""
    import keras

    keras.utils.set_random_seed(5)
    image = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(image)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    rgb = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="rgb_conv")(x)
    rgb = keras.layers.Conv2D(3, 1, activation="sigmoid", name="enhanced")(rgb)
    conf = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conf_conv")(x)
    conf = keras.layers.Conv2D(1, 1, activation="sigmoid", name="confidence")(conf)
    model = keras.Model(image, [rgb, conf], name="two_head")
    images = _images()
    target = tiny_models.enhancement_target(images)
    agreement = np.exp(-8.0 * np.abs(_luma(target) - _luma(images)))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=["mse", "mse"])
    model.fit(images, [target, agreement], epochs=6, batch_size=16, verbose=0)
    if outlier is not None:
        tiny_models.plant_outlier_channel(model.get_layer("conf_conv"),
                                          model.get_layer("confidence"), outlier)
    return model
