"""``quantization_aware_training``: fine-tune the model under simulated quantization.

tensorflow-model-optimization (tfmot) only knows tf-keras (Keras 2), so this runs in a worker
of its own started with ``TF_USE_LEGACY_KERAS=1``. There the Keras 3 model is rebuilt layer by
layer in tf-keras (same configuration, same weights), the layers tfmot supports are annotated
for its default 8-bit scheme, the activation ranges start at the float model's calibrated
ranges, and the whole model is fine-tuned to reproduce the float model's own outputs on the
calibration images (distillation: no labels needed). The trained model is then converted the
way tfmot intends: TFLite's converter reads its learned ranges, and tf2onnx turns its fake
quantization into ONNX QDQ nodes.

tfmot's default scheme rounds Conv2D and Dense kernels per output channel but DepthwiseConv2D
kernels per tensor, so its artifacts are not the converters' per-channel or per-tensor targets
exactly; qcheck measures them against the float model like any other fix.
"""

from __future__ import annotations

import inspect
import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from converters.source import INPUT_NAME, ONNX_OPSET, tf2onnx_export
from qcheck.errors import ConversionError
from qcheck.jobs import ConvertJob, Lane, QatJob
from qcheck.quiet import native_quiet
from qcheck.types import Format, TargetSpec

if TYPE_CHECKING:
    from qcheck.session import Session

__all__ = ["SUPPORTED_LAYERS", "TRAINING", "convert_trained", "fine_tune", "qat_job",
           "rebuild_in_tf_keras"]

# Layers tfmot's default 8-bit scheme quantizes; others (Rescaling, …) train in float.
SUPPORTED_LAYERS = frozenset({"Conv2D", "DepthwiseConv2D", "Dense", "Add", "ReLU",
                              "AveragePooling2D", "MaxPooling2D", "UpSampling2D", "Concatenate"})
STEPS = 1000  # optimizer steps: seconds for a small image model on a CPU
BATCH = 8
LEARNING_RATE = 3e-5
SEED = 0
# Everything that decides what training makes (part of its cache key).
TRAINING = {"steps": STEPS, "batch": BATCH, "learning_rate": LEARNING_RATE, "seed": SEED}
_DROPPED_SUFFIXES = ("_initializer", "_regularizer", "_constraint")


def fine_tune(model: Any, inputs: np.ndarray, steps: int = STEPS) -> tuple[Any, dict[str, Any]]:
    """QAT-fine-tune the Keras 3 ``model`` on ``inputs`` (model range): the trained tf-keras
    QAT model and the distillation loss before and after."""
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise RuntimeError("fine_tune runs in the QAT worker (TF_USE_LEGACY_KERAS=1)")
    import tensorflow_model_optimization as tfmot
    import tf_keras

    # Seeded (shuffling, initial quantizer state): the same model and images train the same.
    tf_keras.utils.set_random_seed(SEED)
    student = rebuild_in_tf_keras(model)
    # Horizontal flips double the distillation set: the teacher labels them too.
    inputs = np.concatenate([inputs, inputs[:, :, ::-1]]).astype(np.float32)
    teacher = np.concatenate([np.asarray(model(inputs[i : i + BATCH], training=False))
                              for i in range(0, len(inputs), BATCH)])

    def annotate(layer: Any) -> Any:
        if type(layer).__name__ in SUPPORTED_LAYERS:
            return tfmot.quantization.keras.quantize_annotate_layer(layer)
        return layer

    annotated = tf_keras.models.clone_model(student, clone_function=annotate)
    annotated.set_weights(student.get_weights())  # clone_model initializes afresh
    try:
        quantized = tfmot.quantization.keras.quantize_apply(annotated)
    except Exception as exc:  # tfmot raises bare RuntimeError/ValueError on layouts it refuses
        raise ConversionError(f"tensorflow-model-optimization cannot quantize this model: "
                              f"{str(exc).splitlines()[0][:200]}") from None
    ranges = _start_ranges_at_calibration(quantized, model, inputs)

    class KeepCalibratedRanges(tf_keras.callbacks.Callback):
        """Undo tfmot's moving-average drift of activation ranges after every step: they stay
        what the converters will calibrate, and only the weights learn."""

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            for variable, value in ranges:
                variable.assign(value)

    epochs = max(1, math.ceil(steps / math.ceil(len(inputs) / BATCH)))
    # Cosine decay to zero: large early steps find the better weights, small late ones keep them.
    schedule = tf_keras.optimizers.schedules.CosineDecay(
        LEARNING_RATE, epochs * math.ceil(len(inputs) / BATCH))
    quantized.compile(tf_keras.optimizers.Adam(schedule), loss="mse")
    before = float(quantized.evaluate(inputs, teacher, batch_size=BATCH, verbose=0))
    quantized.fit(inputs, teacher, batch_size=BATCH, epochs=epochs, shuffle=True, verbose=0,
                  callbacks=[KeepCalibratedRanges()])
    after = float(quantized.evaluate(inputs, teacher, batch_size=BATCH, verbose=0))
    return quantized, {"loss_before": before, "loss_after": after, "steps": steps,
                       "samples": len(inputs)}


def convert_trained(quantized: Any, spec: TargetSpec, calibration: np.ndarray,
                    signed_io: bool) -> bytes:
    """The trained QAT model as ``spec``'s format: TFLite full-integer (the calibration images
    only range the layers tfmot leaves float) or ONNX with QDQ nodes."""
    import tensorflow as tf

    if spec.format is Format.TFLITE:
        converter = tf.lite.TFLiteConverter.from_keras_model(quantized)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([row[np.newaxis]] for row in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8 if signed_io else tf.uint8
        converter.inference_output_type = tf.int8 if signed_io else tf.uint8
        with native_quiet():
            return bytes(converter.convert())
    import tf2onnx

    shape = (None, *tuple(quantized.inputs[0].shape)[1:])
    signature = (tf.TensorSpec(shape, tf.float32, name=INPUT_NAME),)
    with native_quiet(), tf2onnx_export():
        proto, _ = tf2onnx.convert.from_keras(quantized, input_signature=signature,
                                              opset=ONNX_OPSET)
    return bytes(proto.SerializeToString())


def rebuild_in_tf_keras(model: Any) -> Any:
    """The Keras 3 functional ``model`` as a tf-keras model: same layers, names and weights."""
    import tf_keras

    tensors: dict[str, Any] = {}
    source = model.inputs[0]
    input_layer = source._keras_history[0]
    tensors[input_layer.name] = tf_keras.Input(shape=tuple(source.shape[1:]),
                                               name=input_layer.name)
    for layer in model.layers:
        if layer is input_layer:
            continue
        nodes = getattr(layer, "_inbound_nodes", [])
        if len(nodes) != 1:
            raise ConversionError(f"quantization-aware training: layer {layer.name!r} is used "
                                  f"{len(nodes)} times; qcheck rebuilds single-use layers only")
        inbound = [t._keras_history[0].name for t in nodes[0].input_tensors]
        clone = _portable(layer)
        x = tensors[inbound[0]] if len(inbound) == 1 else [tensors[n] for n in inbound]
        tensors[layer.name] = clone(x)
        clone.set_weights(layer.get_weights())
    output = model.outputs[0]._keras_history[0].name
    return tf_keras.Model(tensors[input_layer.name], tensors[output])


def _portable(layer: Any) -> Any:
    """The tf-keras twin of a Keras 3 layer, from the configuration both understand."""
    import tf_keras

    kind = type(layer).__name__
    twin = getattr(tf_keras.layers, kind, None)
    if twin is None:
        raise ConversionError(f"quantization-aware training: layer {layer.name!r} ({kind}) "
                              "has no tf-keras equivalent; tfmot needs tf-keras")
    accepted = inspect.signature(twin.__init__).parameters
    config: dict[str, Any] = {}
    for key, value in layer.get_config().items():
        if key.endswith(_DROPPED_SUFFIXES):
            continue  # training-time settings; the weights are copied anyway
        if key == "dtype" and isinstance(value, dict):
            value = value.get("config", {}).get("name", "float32")
        if key in accepted or key in ("name", "trainable", "dtype"):
            config[key] = value
    try:
        return twin.from_config(config)
    except Exception as exc:
        raise ConversionError(f"quantization-aware training: cannot rebuild {layer.name!r} "
                              f"({kind}) in tf-keras: {str(exc).splitlines()[0][:160]}") from None


def _start_ranges_at_calibration(quantized: Any, model: Any, inputs: np.ndarray
                                 ) -> list[tuple[Any, float]]:
    """Activation quantizers start at the float model's ranges on the calibration images.

    tfmot starts them at ±6 and moves them by a slow moving average, so a layer whose values
    reach hundreds would be clipped for the whole fine-tuning, and the weights would learn to
    live with clipping the converters never apply.
    """
    from qcheck.analyze.stats import ActivationStats, activation_stats

    input_stats, stats = activation_stats(model, [inputs[i : i + BATCH]
                                                  for i in range(0, len(inputs), BATCH)])
    assigned: list[tuple[Any, float]] = []
    for variable in quantized.weights:
        scope, _, leaf = variable.name.rpartition("/")
        leaf = leaf.split(":")[0]
        owner = scope.split("/")[-1]
        found: ActivationStats | None = None
        if owner == "quantize_layer":
            found = input_stats
        elif owner.startswith("quant_") and leaf.endswith(("activation_min", "activation_max",
                                                          "output_min", "output_max")):
            found = stats.get(owner.removeprefix("quant_"))
        if found is None:
            continue
        if leaf.endswith("_min"):
            assigned.append((variable, min(found.low, 0.0)))
        elif leaf.endswith("_max"):
            assigned.append((variable, max(found.high, 0.0)))
    for variable, value in assigned:
        variable.assign(value)
    return assigned


def qat_job(session: Session, spec: TargetSpec) -> ConvertJob:
    """Run what quantization-aware training makes of the model for ``spec``: the QAT worker
    fine-tunes (once per model) and converts, the runtime lane runs the artifact."""
    trained = session.keys.qat(spec, TRAINING)
    model_path = str(session.handle.path.resolve())
    base = QatJob(key=trained, target=spec.name, model_path=model_path,
                  signed_io=session.keys.signed_io, lane=Lane.QAT,
                  custom_objects=session.handle.custom_objects)
    return ConvertJob(key=session.keys.qat_run(trained), target=spec.name,
                      model_path=model_path, signed_io=session.keys.signed_io,
                      lane=Lane.RUNTIME, base=base)
