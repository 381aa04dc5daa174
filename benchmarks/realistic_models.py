"""Two models the size people ship, built in code with random weights (timing needs no training).

- ``mirnet``: a MIRNet-style denoiser (keras-io's "Low-light image enhancement using MIRNet"):
  recursive residual groups of multi-scale residual blocks, each with three resolution streams,
  dual attention units (channel and spatial attention) and selective kernel feature fusion.
- ``convnext``: a ConvNeXt-Tiny-size classifier (depths 3-3-9-3, widths 96-768, 7×7 depthwise
  convolutions, LayerNorm, GELU MLPs) at 224×224 with a 1000-way softmax head.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["MODELS", "build_convnext", "build_mirnet", "save"]

MIRNET_SIZE = 128
MIRNET_CHANNELS = 64
CONVNEXT_SIZE = 224


def _channel_attention(x: Any, channels: int, name: str) -> Any:
    from keras import layers

    squeeze = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_gap")(x)
    squeeze = layers.Conv2D(channels // 8, 1, activation="relu", name=f"{name}_reduce")(squeeze)
    squeeze = layers.Conv2D(channels, 1, activation="sigmoid", name=f"{name}_excite")(squeeze)
    return layers.Multiply(name=f"{name}_scale")([x, squeeze])


def _spatial_attention(x: Any, name: str) -> Any:
    from keras import layers, ops

    pooled = layers.Concatenate(name=f"{name}_pool")(
        [ops.mean(x, axis=-1, keepdims=True), ops.max(x, axis=-1, keepdims=True)])
    gate = layers.Conv2D(1, 7, padding="same", activation="sigmoid", name=f"{name}_gate")(pooled)
    return layers.Multiply(name=f"{name}_mask")([x, gate])


def _dual_attention(x: Any, channels: int, name: str) -> Any:
    from keras import layers

    h = layers.Conv2D(channels, 3, padding="same", activation="relu", name=f"{name}_conv1")(x)
    h = layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv2")(h)
    both = layers.Concatenate(name=f"{name}_cat")(
        [_channel_attention(h, channels, f"{name}_ca"), _spatial_attention(h, f"{name}_sa")])
    h = layers.Conv2D(channels, 1, name=f"{name}_merge")(both)
    return layers.Add(name=f"{name}_add")([x, h])


def _selective_fusion(streams: list[Any], channels: int, name: str) -> Any:
    from keras import layers, ops

    total = layers.Add(name=f"{name}_sum")(streams)
    squeeze = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_gap")(total)
    squeeze = layers.Conv2D(channels // 8, 1, activation="relu", name=f"{name}_reduce")(squeeze)
    logits = [layers.Conv2D(channels, 1, name=f"{name}_branch{i}")(squeeze)
              for i in range(len(streams))]
    weights = layers.Softmax(axis=-1, name=f"{name}_select")(ops.stack(logits, axis=-1))
    weighted = [layers.Multiply(name=f"{name}_weigh{i}")([stream, weights[..., i]])
                for i, stream in enumerate(streams)]
    return layers.Add(name=f"{name}_fuse")(weighted)


def _multi_scale_block(x: Any, channels: int, name: str) -> Any:
    from keras import layers

    full = x
    half = layers.Conv2D(channels, 3, strides=2, padding="same", name=f"{name}_down2")(x)
    quarter = layers.Conv2D(channels, 3, strides=2, padding="same", name=f"{name}_down4")(half)
    full = _dual_attention(full, channels, f"{name}_s1")
    half = _dual_attention(half, channels, f"{name}_s2")
    quarter = _dual_attention(quarter, channels, f"{name}_s4")
    up_half = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_up2")(half)
    up_quarter = layers.UpSampling2D(4, interpolation="bilinear", name=f"{name}_up4")(quarter)
    fused = _selective_fusion([full, up_half, up_quarter], channels, f"{name}_skff")
    fused = layers.Conv2D(channels, 1, name=f"{name}_out")(fused)
    return layers.Add(name=f"{name}_residual")([x, fused])


def build_mirnet(seed: int = 0, groups: int = 3, blocks: int = 1) -> Any:
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((MIRNET_SIZE, MIRNET_SIZE, 3), name="image")
    x = layers.Conv2D(MIRNET_CHANNELS, 3, padding="same", name="shallow")(inputs)
    for group in range(groups):
        skip = x
        for block in range(blocks):
            x = _multi_scale_block(x, MIRNET_CHANNELS, f"rrg{group}_msrb{block}")
        x = layers.Conv2D(MIRNET_CHANNELS, 3, padding="same", name=f"rrg{group}_conv")(x)
        x = layers.Add(name=f"rrg{group}_add")([skip, x])
    x = layers.Conv2D(3, 3, padding="same",
                      kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                      name="to_rgb")(x)
    outputs = layers.Add(name="residual")([inputs, x])
    return keras.Model(inputs, outputs, name="mirnet_style")


def _convnext_block(x: Any, width: int, name: str) -> Any:
    from keras import layers

    h = layers.DepthwiseConv2D(7, padding="same", name=f"{name}_depthwise")(x)
    h = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm")(h)
    h = layers.Dense(4 * width, activation="gelu", name=f"{name}_expand")(h)
    h = layers.Dense(width, name=f"{name}_project")(h)
    return layers.Add(name=f"{name}_add")([x, h])


def build_convnext(seed: int = 0, depths: tuple[int, ...] = (3, 3, 9, 3),
                   widths: tuple[int, ...] = (96, 192, 384, 768)) -> Any:
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((CONVNEXT_SIZE, CONVNEXT_SIZE, 3), name="image")
    x = layers.Rescaling(2.0, offset=-1.0, name="normalize")(inputs)
    x = layers.Conv2D(widths[0], 4, strides=4, name="stem")(x)
    x = layers.LayerNormalization(epsilon=1e-6, name="stem_norm")(x)
    for stage, (depth, width) in enumerate(zip(depths, widths, strict=True)):
        if stage:
            x = layers.LayerNormalization(epsilon=1e-6, name=f"down{stage}_norm")(x)
            x = layers.Conv2D(width, 2, strides=2, name=f"down{stage}")(x)
        for block in range(depth):
            x = _convnext_block(x, width, f"stage{stage}_block{block}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.LayerNormalization(epsilon=1e-6, name="head_norm")(x)
    outputs = layers.Dense(1000, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="convnext_style")


MODELS = {"mirnet": build_mirnet, "convnext": build_convnext}


def save(name: str, path: Path) -> int:
    model = MODELS[name]()
    model.save(path)
    return len(model.layers)
