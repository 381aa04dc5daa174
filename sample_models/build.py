"""Build and train the sample models deterministically: ``python sample_models/build.py``.

Every model learns the same real image-to-image task, a colour grade (more saturation, a gentle
S-curve and a warm shift), on crops of the bundled *calibration* photographs and charts, so its
float output is meaningful and the evaluation half stays unseen. Each one carries one of the
classic causes of colour artifacts after quantization; ``healthy`` carries none.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONHASHSEED", "0")

HERE = Path(__file__).resolve().parent
SIZE = 64
SEED = 1234


def grade(pixels: np.ndarray) -> np.ndarray:
    """The task: saturation ×1.3, a gentle S-curve, and a warm shift; all in [0, 1]."""
    luma = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    saturated = luma[..., None] + 1.3 * (pixels - luma[..., None])
    clipped = np.clip(saturated, 0.0, 1.0)
    s_curve = clipped * clipped * (3.0 - 2.0 * clipped)
    graded = 0.6 * clipped + 0.4 * s_curve + np.array([0.03, 0.01, -0.03], dtype=np.float32)
    return np.clip(graded, 0.0, 1.0).astype(np.float32)


def training_crops(count: int = 384) -> np.ndarray:
    """Random crops (and flips) of the bundled calibration half, at the models' input size."""
    return bundled_crops(count, SIZE, SEED, flips=True)


def bundled_crops(count: int, size: int, seed: int, *, flips: bool = False) -> np.ndarray:
    """``count`` random ``size``² crops of the bundled calibration half (seen at twice that
    size), mirrored at random with ``flips``: training data that never touches evaluation."""
    from qcheck.load.bundled import bundled_images

    calib, _ = bundled_images((size * 2, size * 2))
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(count):
        image = calib.pixels[rng.integers(len(calib))]
        top, left = rng.integers(0, size + 1, size=2)
        crop = image[top : top + size, left : left + size]
        if flips and rng.random() < 0.5:
            crop = crop[:, ::-1]
        crops.append(crop)
    return np.stack(crops).astype(np.float32)


def _train(model, inputs: np.ndarray, targets: np.ndarray, epochs: int,  # type: ignore[no-untyped-def]
           lr: float = 2e-3):
    import keras

    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    model.fit(inputs, targets, epochs=epochs, batch_size=32, shuffle=True, verbose=0)
    return model


def healthy(x: np.ndarray, y: np.ndarray):  # type: ignore[no-untyped-def]
    """Normalized input, full 3×3 convolutions that mix channels, a residual to the input."""
    import keras
    from keras import layers

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    h = layers.Rescaling(2.0, offset=-1.0, name="normalize")(inputs)
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(h)
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(h)
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3")(h)
    h = layers.Conv2D(3, 1, name="to_rgb")(h)
    outputs = layers.Add(name="residual")([inputs, h])
    return _train(keras.Model(inputs, outputs, name="healthy"), x, y, epochs=60)


def unnormalized_input(x: np.ndarray, y: np.ndarray):  # type: ignore[no-untyped-def]
    """Fed raw 0–255 values with no normalization layer; outputs 0–255 too."""
    import keras
    from keras import layers

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(h)
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3")(h)
    h = layers.Conv2D(3, 1, name="to_rgb")(h)
    outputs = layers.Add(name="residual")([inputs, h])
    model = keras.Model(inputs, outputs, name="unnormalized_input")
    return _train(model, x * 255.0, y * 255.0, epochs=60, lr=1e-3)


def pool_after_residual(x: np.ndarray, y: np.ndarray):  # type: ignore[no-untyped-def]
    """Residual blocks whose adds feed straight into pooling, then upsampling back."""
    import keras
    from keras import layers

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    h = layers.Rescaling(2.0, offset=-1.0, name="normalize")(inputs)
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="stem")(h)
    for block in (1, 2):
        branch = layers.Conv2D(16, 3, padding="same", activation="relu",
                               name=f"block{block}_conv_a")(h)
        branch = layers.Conv2D(16, 3, padding="same", name=f"block{block}_conv_b")(branch)
        h = layers.Add(name=f"block{block}_add")([h, branch])
        h = layers.AveragePooling2D(2, name=f"block{block}_pool")(h)
    h = layers.UpSampling2D(4, interpolation="bilinear", name="upsample")(h)
    h = layers.Conv2D(3, 1, name="to_rgb")(h)
    outputs = layers.Add(name="residual")([inputs, h])
    return _train(keras.Model(inputs, outputs, name="pool_after_residual"), x, y, epochs=60)


def depthwise_rgb(x: np.ndarray, y: np.ndarray):  # type: ignore[no-untyped-def]
    """Depthwise filters on R, G and B separately, with only 3 pointwise filters to remix them."""
    import keras
    from keras import layers

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    h = layers.Rescaling(2.0, offset=-1.0, name="normalize")(inputs)
    for block in (1, 2, 3):
        h = layers.DepthwiseConv2D(3, padding="same", activation="relu",
                                   name=f"block{block}_depthwise")(h)
        h = layers.Conv2D(3, 1, name=f"block{block}_pointwise")(h)
    outputs = layers.Add(name="residual")([inputs, h])
    return _train(keras.Model(inputs, outputs, name="depthwise_rgb"), x, y, epochs=60)


def per_tensor_trap(x: np.ndarray, y: np.ndarray):  # type: ignore[no-untyped-def]
    """A depthwise layer whose channels' weights differ by orders of magnitude.

    After training, one depthwise channel is made dead (a large negative bias) with weights
    ~100× the others, as batch-norm folding leaves a channel whose variance collapsed. The float
    function does not depend on it, but a per-tensor weight scale is set by it.
    """
    import keras
    from keras import layers

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    h = layers.Rescaling(2.0, offset=-1.0, name="normalize")(inputs)
    h = layers.Conv2D(12, 3, padding="same", activation="relu", name="expand")(h)
    h = layers.DepthwiseConv2D(3, padding="same", activation="relu", name="depthwise")(h)
    h = layers.Conv2D(12, 1, activation="relu", name="pointwise")(h)
    h = layers.Conv2D(3, 1, name="to_rgb")(h)
    outputs = layers.Add(name="residual")([inputs, h])
    model = _train(keras.Model(inputs, outputs, name="per_tensor_trap"), x, y, epochs=50)

    depthwise = model.get_layer("depthwise")
    kernel, bias = (np.array(w) for w in depthwise.get_weights())
    dead = int(np.argmin(np.abs(kernel).reshape(-1, kernel.shape[2]).max(axis=0)))
    typical = float(np.abs(kernel).max())
    kernel[..., dead, 0] = np.sign(kernel[..., dead, 0] + 1e-12) * 100.0 * typical
    # The channel's input is a ReLU output bounded on the training data; a bias below minus
    # the kernel's total mass times that bound keeps it at zero for every such input.
    bound = float(np.max(_layer_output(model, "expand", x)[..., dead])) * 4.0 + 1.0
    bias[dead] = -np.abs(kernel[..., dead, 0]).sum() * bound
    depthwise.set_weights([kernel, bias])
    # The others relearn what the dead channel carried; it gets no gradient and stays as planted.
    return _train(model, x, y, epochs=20, lr=1e-3)


def two_traps(x: np.ndarray, y: np.ndarray, epochs: int = 60):  # type: ignore[no-untyped-def]
    """Two convolutions, far apart, each fed one dead channel through huge weights.

    After training, one channel of ``conv1`` and one of ``conv4`` are silenced (a large negative
    bias before a swish), and the next convolution's weights on that channel are set ~100×
    the others, as a pruned or collapsed channel leaves them. The float function does not
    depend on them, but every output channel's int8 weight scale is set by them, per channel
    too. Neither trap alone passes, so no single fix does; keeping both float (or every fix
    that needs both) does.
    """
    import keras
    from keras import layers

    inputs = keras.Input(x.shape[1:], name="image")
    h = layers.Rescaling(2.0, offset=-1.0, name="normalize")(inputs)
    h = layers.Conv2D(16, 3, padding="same", activation="swish", name="conv1")(h)
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="trap_a")(h)
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3")(h)
    h = layers.Conv2D(16, 3, padding="same", activation="swish", name="conv4")(h)
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="trap_b")(h)
    h = layers.Conv2D(3, 1, name="to_rgb")(h)
    outputs = layers.Add(name="residual")([inputs, h])
    model = _train(keras.Model(inputs, outputs, name="two_traps"), x, y, epochs=epochs)
    for source, trap in (("conv1", "trap_a"), ("conv4", "trap_b")):
        _plant_dead_channel(model, source, trap)
    return _train(model, x, y, epochs=max(epochs // 3, 1), lr=1e-3)


def _plant_dead_channel(model, source: str, trap: str) -> None:  # type: ignore[no-untyped-def]
    """Silence ``source``'s weakest channel and give ``trap`` ~100× weights on it."""
    kernel, bias = (np.array(w) for w in model.get_layer(source).get_weights())
    dead = int(np.argmin(np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0)))
    bias[dead] = -16.0  # swish(-16) is -2e-6: nothing, even through the trap's weights
    kernel[..., dead] = 0.0
    model.get_layer(source).set_weights([kernel, bias])
    weights, trap_bias = (np.array(w) for w in model.get_layer(trap).get_weights())
    typical = float(np.abs(weights).max())
    weights[:, :, dead, :] = 100.0 * typical
    model.get_layer(trap).set_weights([weights, trap_bias])


def segmentation(x: np.ndarray, y: np.ndarray):  # type: ignore[no-untyped-def]
    """A small U-Net that labels every pixel dark, saturated or other (a 3-class softmax):
    its output is a class map, not a picture."""
    import keras
    from keras import layers

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    h = layers.Rescaling(2.0, offset=-1.0, name="normalize")(inputs)
    skip = layers.Conv2D(16, 3, padding="same", activation="relu", name="enc1")(h)
    h = layers.MaxPooling2D(2, name="down")(skip)
    h = layers.Conv2D(32, 3, padding="same", activation="relu", name="enc2")(h)
    h = layers.UpSampling2D(2, name="up")(h)
    h = layers.Concatenate(name="skip")([h, skip])
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="dec1")(h)
    outputs = layers.Conv2D(3, 1, activation="softmax", name="classes")(h)
    model = keras.Model(inputs, outputs, name="segmentation")
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="categorical_crossentropy")
    model.fit(x, segments(x), epochs=40, batch_size=32, shuffle=True, verbose=0)
    return model


def segments(pixels: np.ndarray) -> np.ndarray:
    """What the segmentation model learns: dark (luma < 0.3), saturated (chroma > 0.25), other."""
    luma = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    chroma = pixels.max(axis=-1) - pixels.min(axis=-1)
    labels = np.where(luma < 0.3, 0, np.where(chroma > 0.25, 1, 2))
    return np.eye(3, dtype=np.float32)[labels]


def signed_sigmoid(x: np.ndarray, y: np.ndarray):  # type: ignore[no-untyped-def]
    """Fed −1:1 (as MobileNetV2-style backbones are), answering through a sigmoid in 0:1: the
    output is not in the input's range."""
    import keras
    from keras import layers

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(h)
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3")(h)
    outputs = layers.Conv2D(3, 1, activation="sigmoid", name="to_rgb")(h)
    return _train(keras.Model(inputs, outputs, name="signed_sigmoid"), x * 2 - 1, y, epochs=60)


def _layer_output(model, name: str, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    import keras

    probe = keras.Model(model.inputs, model.get_layer(name).output)
    return np.asarray(probe.predict(x, verbose=0))


BUILDERS: dict[str, Callable] = {  # type: ignore[type-arg]
    "healthy": healthy,
    "unnormalized_input": unnormalized_input,
    "pool_after_residual": pool_after_residual,
    "depthwise_rgb": depthwise_rgb,
    "per_tensor_trap": per_tensor_trap,
    "segmentation": segmentation,
    "two_traps": two_traps,
    "signed_sigmoid": signed_sigmoid,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(BUILDERS), help="models to build")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE.parent))
    import keras
    import tensorflow as tf

    x = training_crops()
    y = grade(x)
    for name in args.names:
        started = time.perf_counter()
        keras.utils.set_random_seed(SEED)
        tf.config.experimental.enable_op_determinism()
        model = BUILDERS[name](x, y)
        scale = 255.0 if name == "unnormalized_input" else 1.0
        inputs = x * 2 - 1 if name == "signed_sigmoid" else x * scale
        wanted = segments(x) if name == "segmentation" else y
        loss = float(np.mean((model.predict(inputs, verbose=0) / scale - wanted) ** 2))
        path = args.out / f"{name}.keras"
        model.save(path)
        if name == "healthy" and args.out.resolve() == HERE.resolve():
            # The repository's samples rebuilt: the copy an installed qcheck ships follows.
            shutil.copyfile(path, HERE.parent / "qcheck" / "samples" / "healthy.keras")
        print(f"{name}: mse {loss:.5f}, {path.stat().st_size / 1024:.0f} KiB, "
              f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
