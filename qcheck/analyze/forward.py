"""Forward passes of the float model with a hook on every layer's output (by path), eagerly or
as one traced function that simulates many quantization configurations at once."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from converters.graph import run_flat
from qcheck.named import Batch, model_inputs, pack_outputs
from qcheck.numerics import ActivationKind, fake_quantize_affine, tensorflow_ops

__all__ = ["Hook", "forward", "traced_forward"]

Hook = Callable[[str, Any], Any]  # (layer path, output tensor) -> output tensor


def forward(model: Any, inputs: Batch, hook: Hook | None = None,
            output: int | None = None) -> np.ndarray:
    """Run the graph eagerly (nested models opened up), passing each layer's output through
    ``hook``; the model's output ``output`` (None: every output, packed when several)."""
    fed = model_inputs(model, inputs)
    if hook is None:
        return _chosen(model(fed, training=False), output)

    def call(path: str, layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        kwargs.pop("training", None)
        return hook(path, _call(layer, args, kwargs))

    return _chosen(run_flat(model, fed, call), output)


def _chosen(outputs: Any, output: int | None) -> np.ndarray:
    if not isinstance(outputs, list | tuple):
        return np.asarray(outputs)
    if output is not None:
        return np.asarray(outputs[output])
    return pack_outputs([np.asarray(o) for o in outputs])


def traced_forward(model: Any, hooked: dict[str, int], kind: ActivationKind | None,
                   shadows: dict[str, Any], output: int | None = None) -> Any:
    """A ``tf.function`` of the whole model where, per sample, each hooked layer can run with
    its rounded weights (its ``shadows`` copy) and have its output clipped to the calibrated
    range and fake-quantized as ``kind``.

    Call it as ``f(x, weights, act, clip, scale, zero, low, high)``: the three masks are
    (batch, hooked layers); the other four hold one value per hooked layer. ``x`` is the
    input batch, or for a model with several inputs a list in the model's input order;
    ``output`` picks one of several outputs (None: the first).
    """
    import tensorflow as tf

    ops = tensorflow_ops()

    def quantized(y: Any, scale: Any, zero: Any) -> Any:
        return fake_quantize_affine(y, scale, zero, kind, ops)

    def run(x: Any, weights: Any, act: Any, clip: Any, scale: Any, zero: Any, low: Any,
            high: Any) -> Any:
        def call(path: str, layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
                kwargs.pop("training", None)
                y = _call(layer, args, kwargs)
                k = hooked.get(path)
                if k is None or isinstance(y, list | tuple):
                    return y
                shape = [-1] + [1] * (len(y.shape) - 1)
                shadow = shadows.get(path)
                rounded = tf.reshape(weights[:, k], shape) > 0
                clipped = tf.reshape(clip[:, k], shape) > 0
                acting = tf.reshape(act[:, k], shape) > 0

                def changed(y: Any = y) -> Any:
                    if shadow is not None:
                        y = tf.where(rounded, _call(shadow, args, kwargs), y)
                    y = tf.where(clipped, tf.clip_by_value(y, low[k], high[k]), y)
                    if kind is not None:
                        y = tf.where(acting, quantized(y, scale[k], zero[k]), y)
                    return y

                # One branch per layer, taken only when some sample changes it here.
                anything = tf.reduce_any(weights[:, k] + act[:, k] + clip[:, k] > 0)
                return tf.cond(anything, changed, lambda: y)

        outputs = run_flat(model, list(x) if isinstance(x, list | tuple) else x, call)
        return outputs[output or 0] if isinstance(outputs, list | tuple) else outputs

    specs = [tf.TensorSpec((None, *tuple(t.shape)[1:]), tf.float32) for t in model.inputs]
    mask = tf.TensorSpec((None, len(hooked)), tf.float32)
    per_layer = tf.TensorSpec((len(hooked),), tf.float32)
    function = tf.function(run, autograph=False, input_signature=[
        specs if len(specs) > 1 else specs[0], mask, mask, mask, per_layer, per_layer,
        per_layer, per_layer])

    def call(*args: Any) -> Any:
        with _GRAPH_REWRITES.off():
            return function(*args)

    return call


class _GraphRewrites:
    """TensorFlow's graph optimizer off while any simulation runs: rewriting a function with
    a conditional per layer costs it seconds on the first pass (2.3 s of 5.3 s on a 158-layer
    MIRNet-style model, 0.4 s on a 100-layer MobileNet-style one), and its rewrites gain the
    passes after it nothing measurable there. Instantiation reads the option at call time.

    The option is the process's: simulations on several threads share one switch, and the
    last to finish restores what was there before the first began."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._before = False

    @contextlib.contextmanager
    def off(self) -> Iterator[None]:
        import tensorflow as tf

        with self._lock:
            if self._running == 0:
                self._before = tf.config.optimizer.get_experimental_options().get(
                    "disable_meta_optimizer", False)
                tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0:
                    tf.config.optimizer.set_experimental_options(
                        {"disable_meta_optimizer": self._before})


_GRAPH_REWRITES = _GraphRewrites()


def _call(layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Inference through a built layer's ``call``: Keras's ``__call__`` wrapper (input checks,
    name scopes, autocasting) costs milliseconds per layer, which dominates hundreds of passes."""
    if getattr(layer, "built", False) and not kwargs and type(layer).__name__ not in (
            "Functional", "Sequential", "Model"):
        try:
            return layer.call(*args)
        except TypeError:
            pass
    return layer(*args, **kwargs)
