"""Small versions of the architectures people ship, built in code and trained for seconds.

Each follows a published example's structure (keras-io ESPCN, Zero-DCE, the Oxford-pets U-Net,
the TensorFlow tutorial's MobileNetV2 U-Net, keras.applications' MobileNetV3 and EfficientNet
stems) at 32×32 with Keras's default layer names, except where a name is the point.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests import tiny_models

SIZE = 32
EPOCHS = 6


def _images(count: int = 96, seed: int = 0) -> np.ndarray:
    return tiny_models.training_images(count, seed=seed)


def _luma(pixels: np.ndarray) -> np.ndarray:
    return (pixels @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]


def _fit(model: Any, x: np.ndarray, y: np.ndarray, loss: Any = "mse", epochs: int = EPOCHS
         ) -> Any:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss)
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=0)
    return model


def depth_to_space(x: Any, channels: int, factor: int) -> Any:
    """Pixel shuffle from Keras's own layers (no Lambda): (H, W, C·r²) → (H·r, W·r, C)."""
    import keras

    height, width = x.shape[1], x.shape[2]
    x = keras.layers.Reshape((height, width, factor, factor, channels))(x)
    x = keras.layers.Permute((1, 3, 2, 4, 5))(x)
    return keras.layers.Reshape((height * factor, width * factor, channels))(x)


def espcn(seed: int = 0) -> Any:
    """keras-io ESPCN: super-resolution of the Y channel with a sub-pixel (depth-to-space)
    output; 1-channel input and output."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE // 2, SIZE // 2, 1))
    x = keras.layers.Conv2D(16, 5, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(4, 3, padding="same")(x)
    model = keras.Model(inputs, depth_to_space(x, 1, 2))
    large = _luma(_images(seed=seed))
    small = large[:, ::2, ::2]
    return _fit(model, small, large)


def zero_dce(seed: int = 0) -> Any:
    """keras-io Zero-DCE: a nested curve-estimation net (tanh) whose curve is applied to the
    image four times, x + r·(x² − x)."""
    import keras

    keras.utils.set_random_seed(seed)
    inner_in = keras.Input((SIZE, SIZE, 3))
    a = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inner_in)
    b = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(a)
    c = keras.layers.Concatenate()([a, b])
    curve = keras.layers.Conv2D(3, 3, padding="same", activation="tanh")(c)
    dce_net = keras.Model(inner_in, curve, name="dce_net")
    inputs = keras.Input((SIZE, SIZE, 3))
    r = dce_net(inputs)
    x = inputs
    for _ in range(4):
        squared = keras.layers.Multiply()([x, x])
        bend = keras.layers.Multiply()([r, keras.layers.Subtract()([squared, x])])
        x = keras.layers.Add()([x, bend])
    model = keras.Model(inputs, x)
    dark = _images(seed=seed) * 0.5
    return _fit(model, dark, np.clip(dark * 1.8, 0, 1))


def _backbone(name: str = "backbone") -> Any:
    """A MobileNetV2-style feature extractor (inverted residuals, default layer names)."""
    import keras

    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    skip = x = keras.layers.ReLU(6.0)(x)
    y = keras.layers.Conv2D(16, 1, use_bias=False)(x)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.ReLU(6.0)(y)
    y = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(y)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.ReLU(6.0)(y)
    y = keras.layers.Conv2D(8, 1, use_bias=False)(y)
    y = keras.layers.BatchNormalization()(y)
    x = keras.layers.Add()([x, y])
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    return keras.Model(inputs, [skip, x], name=name)


def unet_sigmoid(seed: int = 0) -> Any:
    """The TensorFlow tutorial's MobileNetV2 U-Net shape: a backbone sub-model, an upsampling
    decoder with skips, −1:1 input and a sigmoid 0:1 image output."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    skip, deep = _backbone()(inputs)
    x = keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(deep)
    x = keras.layers.Concatenate()([x, skip])
    x = keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(3, 3, padding="same", activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    images = _images(seed=seed)
    return _fit(model, images * 2 - 1, tiny_models.enhancement_target(images))


def _segments(pixels: np.ndarray) -> np.ndarray:
    """Three classes per pixel, from what is visible: dark, saturated, the rest."""
    luma = _luma(pixels)[..., 0]
    chroma = pixels.max(axis=-1) - pixels.min(axis=-1)
    labels = np.where(luma < 0.3, 0, np.where(chroma > 0.25, 1, 2))
    return np.eye(3, dtype=np.float32)[labels]


def oxford_unet(seed: int = 0) -> Any:
    """keras-io Oxford-pets U-Net: separable convolutions, batch norms, residual adds, an
    upsampling path and a 3-class softmax per pixel; default layer names."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    previous = x
    x = keras.layers.SeparableConv2D(16, 3, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same")(x)
    residual = keras.layers.Conv2D(16, 1, strides=2, padding="same")(previous)
    x = keras.layers.Add()([x, residual])
    x = keras.layers.Conv2DTranspose(16, 3, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.UpSampling2D(2)(x)
    x = keras.layers.Conv2DTranspose(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.UpSampling2D(2)(x)
    outputs = keras.layers.Conv2D(3, 3, activation="softmax", padding="same")(x)
    model = keras.Model(inputs, outputs)
    images = _images(seed=seed)
    return _fit(model, images, _segments(images), loss="categorical_crossentropy",
                epochs=EPOCHS * 2)


def _hue_classes(pixels: np.ndarray, count: int = 4) -> np.ndarray:
    mean = pixels.reshape(len(pixels), -1, 3).mean(axis=1)
    labels = np.argmax(mean + np.array([0.0, 0.02, 0.04], np.float32), axis=1)
    brightness = (mean.sum(axis=1) > 1.2).astype(int)
    return np.eye(count, dtype=np.float32)[(labels + 3 * brightness) % count]


def efficientnet_classifier(seed: int = 0) -> Any:
    """keras.applications EfficientNet's stem: Rescaling(1/255) and Normalization on raw
    0–255 pixels, then convolutions, pooling and a softmax."""
    import keras

    keras.utils.set_random_seed(seed)
    images = _images(seed=seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    norm = keras.layers.Normalization(mean=[0.485, 0.456, 0.406],
                                      variance=[0.229**2, 0.224**2, 0.225**2])
    x = norm(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="swish")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="swish")(x)
    x = keras.layers.Conv2D(16, 1, activation="swish")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    return _fit(model, images * 255.0, _hue_classes(images), loss="categorical_crossentropy",
                epochs=EPOCHS * 2)


def mobilenet_v3_classifier(seed: int = 0) -> Any:
    """keras.applications MobileNetV3Small's block: hard-swish, a squeeze-and-excite gate
    (pooling, two dense layers, hard-sigmoid, a multiply) and logits out."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same")(inputs)
    x = keras.layers.Activation("hard_silu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.Activation("hard_silu")(x)
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    gate = keras.layers.Conv2D(8, 1, activation="relu")(gate)
    gate = keras.layers.Conv2D(16, 1, activation="hard_sigmoid")(gate)
    x = keras.layers.Multiply()([x, gate])
    x = keras.layers.Conv2D(24, 1)(x)
    x = keras.layers.Activation("hard_silu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4)(x)
    model = keras.Model(inputs, outputs)
    images = _images(seed=seed)
    return _fit(model, images, _hue_classes(images) * 4.0, epochs=EPOCHS * 2)


def example3(seed: int = 0) -> Any:
    """The seed's Example 3: a depthwise filter straight on R, G and B, one 1×1 convolution
    with 32 filters, a 1×1 back to RGB."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.DepthwiseConv2D(3, padding="same")(inputs)
    x = keras.layers.Conv2D(32, 1, activation="relu")(x)
    outputs = keras.layers.Conv2D(3, 1)(x)
    model = keras.Model(inputs, outputs)
    images = _images(seed=seed)
    return _fit(model, images, tiny_models.enhancement_target(images))


def mirnet_block(seed: int = 0) -> Any:
    """keras-io's low-light MIRNet in miniature: a multi-scale residual block with dual
    attention (channel attention, and spatial attention over ``keras.ops`` mean and max of the
    channels) and selective kernel fusion (a softmax over stacked branches), default names."""
    import keras
    from keras import layers, ops

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(16, 3, padding="same")(inputs)

    def attention(h: Any) -> Any:
        squeeze = layers.GlobalAveragePooling2D(keepdims=True)(h)
        squeeze = layers.Conv2D(4, 1, activation="relu")(squeeze)
        channel = layers.Multiply()([h, layers.Conv2D(16, 1, activation="sigmoid")(squeeze)])
        pooled = layers.Concatenate()([ops.mean(h, axis=-1, keepdims=True),
                                       ops.max(h, axis=-1, keepdims=True)])
        spatial = layers.Multiply()([h, layers.Conv2D(1, 5, padding="same",
                                                      activation="sigmoid")(pooled)])
        return layers.Add()([h, layers.Conv2D(16, 1)(layers.Concatenate()([channel, spatial]))])

    full = attention(x)
    half = attention(layers.Conv2D(16, 3, strides=2, padding="same")(x))
    half = layers.UpSampling2D(2, interpolation="bilinear")(half)
    squeeze = layers.GlobalAveragePooling2D(keepdims=True)(layers.Add()([full, half]))
    logits = [layers.Conv2D(16, 1)(squeeze) for _ in range(2)]
    weights = layers.Softmax(axis=-1)(ops.stack(logits, axis=-1))
    fused = layers.Add()([layers.Multiply()([full, weights[..., 0]]),
                          layers.Multiply()([half, weights[..., 1]])])
    outputs = layers.Add()([inputs, layers.Conv2D(3, 3, padding="same")(fused)])
    model = keras.Model(inputs, outputs)
    images = _images()
    return _fit(model, images, images, epochs=2)


def vit_classifier(seed: int = 0) -> Any:
    """keras-io's ViT classifier in miniature: patch embedding, a learned position embedding,
    pre-norm transformer blocks (LayerNormalization, MultiHeadAttention, a GELU MLP) and a
    softmax head."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    patch, width = 8, 16
    tokens = (SIZE // patch) ** 2
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(width, patch, strides=patch)(inputs)
    x = layers.Reshape((tokens, width))(x)
    positions = layers.Embedding(tokens, width)(keras.ops.arange(tokens)[None])
    x = layers.Add()([x, positions])
    for _ in range(2):
        h = layers.LayerNormalization(epsilon=1e-6)(x)
        h = layers.MultiHeadAttention(num_heads=2, key_dim=8)(h, h)
        x = layers.Add()([x, h])
        h = layers.LayerNormalization(epsilon=1e-6)(x)
        h = layers.Dense(2 * width, activation="gelu")(h)
        x = layers.Add()([x, layers.Dense(width)(h)])
    x = layers.GlobalAveragePooling1D()(layers.LayerNormalization(epsilon=1e-6)(x))
    outputs = layers.Dense(4, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    images = _images(seed=seed)
    return _fit(model, images, _hue_classes(images), loss="categorical_crossentropy",
                epochs=EPOCHS * 2)
