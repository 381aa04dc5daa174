"""Tiny models built in code (32×32, a few layers) that convert in well under a second."""

from __future__ import annotations

import numpy as np

SIZE = 32


def plant_outlier_channel(producer, consumer, factor: float, channel: int = 0,  # type: ignore[no-untyped-def]
                          read_at: int | None = None) -> None:
    """``producer``'s output ``channel`` grows by ``factor`` and ``consumer`` reads it (its
    input channel ``read_at``, by default the same) divided by ``factor``: through a ReLU
    the float function is unchanged, and only quantization can see the wider range."""
    kernel, bias = producer.get_weights()
    kernel[..., channel] *= factor
    bias[channel] *= factor
    producer.set_weights([kernel, bias])
    reads, reads_bias = consumer.get_weights()
    reads[:, :, channel if read_at is None else read_at, :] /= factor
    consumer.set_weights([reads, reads_bias])


def enhancement_target(pixels: np.ndarray) -> np.ndarray:
    """The task the tiny enhancers learn: more contrast and a slight warm grade."""
    warm = np.array([0.03, 0.0, -0.03], dtype=np.float32)
    return np.clip((pixels - 0.5) * 1.15 + 0.5 + warm, 0.0, 1.0).astype(np.float32)


def training_images(count: int = 64, seed: int = 0) -> np.ndarray:
    """Random crops of the bundled calibration photographs and charts."""
    from sample_models.build import bundled_crops

    return bundled_crops(count, SIZE, seed)


def build_enhancer(seed: int = 0, epochs: int = 40):  # type: ignore[no-untyped-def]
    """A small trained image-to-image model: residual convolutions that mix channels."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.Conv2D(3, 1, name="to_rgb")(x)
    outputs = keras.layers.Add(name="residual")([inputs, x])
    model = keras.Model(inputs, outputs, name="tiny_enhancer")
    images = training_images(seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    model.fit(images, enhancement_target(images), epochs=epochs, batch_size=16, verbose=0)
    return model


def build_classifier(seed: int = 0):  # type: ignore[no-untyped-def]
    """A tiny 4-class classifier: non-image output, logits."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(4, name="logits")(x)
    return keras.Model(inputs, outputs, name="tiny_classifier")


def build_mixing_block():  # type: ignore[no-untyped-def]
    """A ConvNeXt block and a MIRNet-style channel attention in 32×32: transposes to push
    through depthwise convolution, layer normalization, GELU, residual adds, a global mean,
    a sigmoid gate and a concatenation."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    stem = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    mixed = keras.layers.DepthwiseConv2D(7, padding="same")(stem)
    mixed = keras.layers.LayerNormalization(epsilon=1e-6)(mixed)
    mixed = keras.layers.Dense(16, activation="gelu")(mixed)
    mixed = keras.layers.Add()([stem, keras.layers.Dense(8)(mixed)])
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True)(mixed)
    gate = keras.layers.Conv2D(8, 1, activation="sigmoid")(gate)
    attended = keras.layers.Multiply()([mixed, gate])
    joined = keras.layers.Concatenate()([attended, stem])
    outputs = keras.layers.Conv2D(3, 3, padding="same", activation="sigmoid")(joined)
    return keras.Model(inputs, outputs)
