"""What every converter starts from, derived once per model and shared by all targets."""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from converters.errors import UntraceableModel
from converters.graph import input_names, is_graph_model, output_paths, run_flat, takes_training

if TYPE_CHECKING:
    import keras

__all__ = ["INPUT_NAME", "CalibrationSamples", "ConversionSource", "tf2onnx_export"]

# Every artifact names its input the same way, so runners need no per-format lookup.
INPUT_NAME = "image"
ONNX_OPSET = 17

# A factory of fresh iterators over single-image batches in the model's input range (for a
# model with several inputs, a dict of them by input name).
CalibrationSamples = Callable[[], Iterator[Any]]


def calibration_digest(calibration: CalibrationSamples) -> str:
    """What the samples hold, so a calibration is computed once per content and reused by
    every artifact built from it (the per-layer builds attribution measures)."""
    digest = hashlib.sha256()
    for sample in calibration():
        parts = [sample[k] for k in sorted(sample)] if isinstance(sample, dict) else [sample]
        for part in parts:
            digest.update(np.ascontiguousarray(part, np.float32).tobytes())
    return digest.hexdigest()


class NamedIO:
    """How a source names its inputs and outputs: a one-input, one-output model's input is
    ``image`` in every artifact; a model with several of either keeps every Keras name."""

    input_shape: tuple[int | None, ...]
    inputs: tuple[tuple[str, tuple[int | None, ...]], ...]
    output_names: list[str]

    @property
    def named_io(self) -> bool:
        return len(self.inputs) > 1 or len(self.output_names) > 1

    @property
    def input_names(self) -> list[str]:
        return [name for name, _shape in self.inputs] if self.named_io else [INPUT_NAME]

    def calibration_lists(self, samples: Iterator[Any]) -> Iterator[list[np.ndarray]]:
        """Samples as the TFLite converter's representative dataset takes them: a list in
        the function's input order."""
        names = self.input_names
        for sample in samples:
            yield [sample[name] for name in names] if isinstance(sample, dict) else [sample]

    @functools.cached_property
    def input_specs(self) -> list[Any]:
        """The traced function's inputs, named as the artifacts name them."""
        import tensorflow as tf

        if not self.named_io:
            return [tf.TensorSpec(self.input_shape, tf.float32, name=INPUT_NAME)]
        return [tf.TensorSpec(shape, tf.float32, name=name) for name, shape in self.inputs]

    @property
    def tflite_output_names(self) -> list[str]:
        return self.output_names if self.named_io else ["output_0"]


class GraphFile:
    """A source handed over as its frozen graph: a model without the Keras code that built
    it (an in-memory model no worker could load from a ``.keras`` file)."""

    model: Any
    frozen_function: Any
    input_shape: tuple[int | None, ...]
    inputs: tuple[tuple[str, tuple[int | None, ...]], ...]
    output_names: list[str]

    def save_graph(self, path: Path) -> None:
        """The frozen graph (``path``) and what it needs to be used again (``path`` with
        ``.json``): a model handed over without the Keras code that built it."""
        frozen = self.frozen_function
        last = self.output_layer  # type: ignore[attr-defined]  # ConversionSource's
        path.write_bytes(frozen.graph.as_graph_def().SerializeToString())
        path.with_suffix(".json").write_text(json.dumps({
            "inputs": [t.name for t in frozen.inputs if t.dtype != "resource"],
            "outputs": [t.name for t in frozen.outputs],
            "shape": list(self.input_shape), "output_layer": last,
            "io": [[name, list(shape)] for name, shape in self.inputs],
            "output_names": self.output_names}))

    @classmethod
    def from_graph(cls, path: Path) -> Self:
        """A source from a saved frozen graph: converts and runs like the model it came from,
        but has no Keras layers (nothing to analyse layer by layer)."""
        import tensorflow as tf

        spec = json.loads(path.with_suffix(".json").read_text())
        graph_def = tf.compat.v1.GraphDef.FromString(path.read_bytes())
        wrapped = tf.compat.v1.wrap_function(
            lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
        tensor = wrapped.graph.get_tensor_by_name
        fetches = [tensor(name) for name in spec["outputs"]]
        function = wrapped.prune(feeds=[tensor(name) for name in spec["inputs"]],
                                 fetches=fetches if len(fetches) > 1 else fetches[0])
        source = cls.__new__(cls)
        source.model = None
        source.input_shape = tuple(spec["shape"])
        source.inputs = tuple((str(name), tuple(shape)) for name, shape in spec["io"])
        source.output_names = [str(name) for name in spec["output_names"]]
        # The output layer's path: keeping it float also keeps the op TFLite names after the
        # output float, as for the model itself.
        source.__dict__.update(function=function, frozen_function=function,
                               output_layer=spec.get("output_layer"))
        return source


class ConversionSource(NamedIO, GraphFile):
    """A Keras model with its frozen TensorFlow graph and float ONNX, each built at most once.

    Every TFLite variant converts from the same frozen function and every ONNX variant starts
    from the same float ONNX model, so a check exports the model once per format family.
    """

    def __init__(self, model: keras.Model, input_shape: tuple[int | None, ...]):
        self.model = model
        self.input_shape = (None, *input_shape[1:])
        # Every input by its Keras name and shape (spatial sizes the model leaves open are the
        # image input's), and every output's name: a model with several of either keeps them
        # all, named as in Keras, in both formats.
        self.inputs, self.output_names = _model_io(model, self.input_shape)

    @classmethod
    def from_onnx(cls, float_model: bytes) -> ConversionSource:
        """A source for the ONNX variants only, from a float ONNX exported elsewhere: no
        TensorFlow or Keras in this process."""
        source = cls.__new__(cls)
        source.__dict__["onnx_float"] = float_model  # what the cached property would hold
        return source

    @functools.cached_property
    def function(self) -> Any:
        """The model as one traced function; each layer's ops under an absolute name scope
        equal to its path, so converters' names start with the Keras layer's path."""
        import tensorflow as tf

        model = self.model
        if not is_graph_model(model):  # a subclassed model: its names stay its own
            return self._traced(lambda image: model(image, training=False))

        def scoped(path: str, layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
                   ) -> Any:
            if takes_training(layer):
                kwargs = {**kwargs, "training": False}
            with tf.name_scope(f"{path}/"):
                return layer(*args, **kwargs)

        if not self.named_io:
            return self._traced(lambda image: _single(run_flat(model, image, scoped)))
        several = len(self.inputs) > 1

        def named(*inputs: Any) -> Any:
            outputs = run_flat(model, list(inputs) if several else inputs[0], scoped)
            return list(outputs) if isinstance(outputs, list | tuple) else outputs

        return self._traced(named)

    def _traced(self, call: Any) -> Any:
        """``call`` as a ``tf.function`` at the model's input signature, without AutoGraph:
        its rewrite of the Python it reaches took a third of the trace (0.15-0.2 s on a
        MobileNetV2-style model, on the path every other job waits for) and changes nothing
        here: Keras does not let it into a layer's ``call``, so the graph is the same (tested),
        and a ``call`` that branches on a tensor fails either way."""
        import tensorflow as tf

        return tf.function(call, input_signature=self.input_specs, autograph=False)

    @functools.cached_property
    def frozen_function(self) -> Any:
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )

        # Keras 3 models trace to resource-variable reads, which the TFLite calibrator cannot
        # evaluate; freezing turns the weights into constants.
        try:
            return convert_variables_to_constants_v2(self.function.get_concrete_function())
        except Exception as exc:  # tracing raises what the layer's own code raises
            if None in self.input_shape[1:3]:
                raise UntraceableModel(_untraceable_at_any_size(exc)) from None
            raise

    def tflite_converter(self) -> Any:
        """A fresh TFLite converter for the frozen function that starts from its graph as it is.

        Each ``convert()`` would freeze its function again, already frozen here: on
        ConvNeXt-Tiny 2.5 s and 0.45 GB more at the conversion's peak, per target. The artifacts
        are the bytes a fresh converter makes."""
        import tensorflow as tf

        frozen = self.frozen_function
        converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])

        def already_frozen() -> tuple[Any, ...]:
            inputs = [tensor for tensor in frozen.inputs if tensor.dtype != tf.resource]
            return frozen.graph.as_graph_def(), inputs, frozen.outputs, frozen

        converter._freeze_concrete_function = already_frozen
        return converter

    @functools.cached_property
    def tflite_float(self) -> bytes:
        """The float TFLite, converted once: the names selective quantization denies and
        ai-edge-quantizer's recipes match are read from it."""
        return bytes(self.tflite_converter().convert())

    @functools.cached_property
    def tflite_float_signed(self) -> bytes:
        """The float TFLite with a ``serving_default`` signature (what ai-edge-quantizer
        starts from)."""
        from converters.signature import with_signature

        return with_signature(self.tflite_float, self.input_names, self.tflite_output_names)

    @functools.cached_property
    def output_layer(self) -> str | None:
        """The path of the layer that makes the model's output (``None``: no Keras layers to
        name, as for a subclassed model)."""
        model = getattr(self, "model", None)
        if model is None or not is_graph_model(model):
            return None
        return output_paths(model)[0]

    @functools.cached_property
    def onnx_float(self) -> bytes:
        """The float ONNX, exported from the same frozen graph TFLite converts (constants
        such as a Normalization layer's stay constants, nothing stays a function call)."""
        frozen = self.frozen_function
        graph_def = frozen.graph.as_graph_def()
        inputs = [t.name for t in frozen.inputs if t.dtype != "resource"]
        outputs = [t.name for t in (frozen.outputs if isinstance(frozen.outputs, list | tuple)
                                    else [frozen.outputs])]
        renamed = {inputs[0]: INPUT_NAME}
        if self.named_io:  # every tensor as Keras names it
            renamed = {**dict(zip(inputs, self.input_names, strict=True)),
                       **dict(zip(outputs, self.output_names, strict=True))}
        try:
            return _export_onnx(graph_def, inputs, outputs, renamed, copy_per_optimizer=False)
        except Exception:  # an optimizer failed in place: again, each on its own copy
            return _export_onnx(graph_def, inputs, outputs, renamed, copy_per_optimizer=True)


def _untraceable_at_any_size(exc: BaseException) -> str:
    """One line for a model Keras cannot trace without a known height and width (a bilinear
    UpSampling2D computes its output size with Python arithmetic on the input's)."""
    called = re.search(r"calling (\w+)\.call\(\)", str(exc))
    layer = called.group(1) if called else type(exc).__name__
    return (f"the model cannot be traced at an unknown input size ({layer} needs a known "
            "height and width): convert it at the size your app runs it at, --input-size HxW")


def _export_onnx(graph_def: Any, inputs: list[str], outputs: list[str],
                 renamed: dict[str, str], *, copy_per_optimizer: bool) -> bytes:
    """tf2onnx's export. By default it deep-copies the whole graph before each of its ~36
    optimizer passes so that a failing pass can be skipped: half the export time on a
    MIRNet-style model. Without the copies a failing pass raises, and the caller retries
    with them. (tf2onnx reads only whether ``TF2ONNX_CATCH_ERRORS`` is set, not its value.)"""
    with tf2onnx_export(), _errors_raised(not copy_per_optimizer), _protos_written_once(), \
            _transposes_scanned_alone():
        proto, _ = _from_frozen_graph_def(
            graph_def, input_names=inputs, output_names=outputs, opset=ONNX_OPSET,
            tensors_to_rename=renamed, custom_op_handlers={"Erfc": (_erfc_as_one_minus_erf, [])})
    return bytes(proto.SerializeToString())


_CATCH_ERRORS = "TF2ONNX_CATCH_ERRORS"
# An export sets tf2onnx's environment variable, patches its classes and resets its name
# counter, all of which the whole process shares: one export at a time.
_EXPORTING = threading.Lock()


@contextlib.contextmanager
def tf2onnx_export() -> Iterator[None]:
    """What every tf2onnx export in qcheck runs under (the check's, and the trained model's
    of ``qcheck.advise.qat``): alone in its process, and reproducible."""
    with _EXPORTING, _reproducible_names():
        yield


@contextlib.contextmanager
def _errors_raised(raised: bool) -> Iterator[None]:
    import os

    previous = os.environ.pop(_CATCH_ERRORS, None)
    if raised:
        os.environ[_CATCH_ERRORS] = "false"
    try:
        yield
    finally:
        os.environ.pop(_CATCH_ERRORS, None)
        if previous is not None:
            os.environ[_CATCH_ERRORS] = previous


def _from_frozen_graph_def(graph_def: Any, *, input_names: list[str], output_names: list[str],
                           **options: Any) -> Any:
    """tf2onnx's ``from_graph_def`` (1.17) less its first step, which imports the graph into a
    session and freezes it, then drops the result: it optimizes the ``graph_def`` it was given
    (ConvNeXt-Tiny: 0.6 s of a 4 s export). The graph here has no variables, so none of its
    inputs is a resource and the names pass through as given."""
    import tensorflow as tf
    from tf2onnx import convert, tf_loader

    with tf.device("/cpu:0"), tf.Graph().as_default():
        optimized = tf_loader.tf_optimize(input_names, output_names, graph_def)
    return convert._convert_common(optimized, name="unknown", continue_on_error=True,
                                   input_names=input_names, output_names=output_names,
                                   initialized_tables=None, **options)


@contextlib.contextmanager
def _reproducible_names() -> Iterator[None]:
    """tf2onnx numbers the nodes it adds from a counter that lives as long as the process, and
    keeps nodes in sets, whose order follows their memory addresses: the same graph exported
    twice gave different names, a different node order, even a different node count (ConvNeXt:
    919 and 920). Each export here numbers from the same start, and its nodes hash in the order
    they were made. Its einsum optimizer (attention's einsums) names the nodes it makes
    after the memory addresses of its objects (``einsum139916165923664_id_axes__119``): there
    each object is numbered in the order it is first asked for its ``id`` instead. (The order
    of sets of names follows the string hash: the workers run with one seed,
    ``qcheck.workers.ahead``.)
    """
    import itertools

    from tf2onnx import utils
    from tf2onnx.graph import Node
    from tf2onnx.optimizer import einsum_optimizer
    from tf2onnx.rewriter import loop_rewriter_base  # noqa: F401 -- takes a name when imported

    made, named = itertools.count(), itertools.count(_EINSUM_IDS)
    create, identity = Node.__init__, Node.__hash__

    def numbered(node: Any, *args: Any, **kwargs: Any) -> None:
        node._qcheck_made = next(made)
        create(node, *args, **kwargs)

    def number_of(thing: Any) -> int:
        # Kept on the object: the allocator hands a dead object's address to the next one.
        fields = getattr(thing, "__dict__", None)
        if fields is None:  # a plain value (an input's index) is only ever a key
            return id(thing)
        if "_qcheck_id" not in fields:
            fields["_qcheck_id"] = next(named)
        return int(fields["_qcheck_id"])

    Node.__init__ = numbered
    Node.__hash__ = lambda node: node._qcheck_made
    einsum_optimizer.id = number_of
    # Its objects, numbered by an earlier export, would otherwise come back from its cache.
    einsum_optimizer.CachedEinsum.einsum_cache.clear()
    utils.INTERNAL_NAME = _FIRST_NAME
    try:
        yield
    finally:
        Node.__init__, Node.__hash__ = create, identity
        del einsum_optimizer.id


# tf2onnx's counter as a new process finds it once its modules that take a name are imported.
_FIRST_NAME = 2
# The einsum optimizer keys its inputs by their small indices in the dict it keys its objects
# by ``id`` in: the numbers standing in for addresses start far above any index (and below
# any address, which the optimizer's plain values still key by).
_EINSUM_IDS = 1 << 40


@contextlib.contextmanager
def _protos_written_once() -> Iterator[None]:
    """tf2onnx writes every node's protobuf after each of its ~36 optimizer passes, though
    the passes read only its own node objects and ``make_graph`` writes them all again at the
    end: with a model's weights held as constant attributes that is the weights copied 36 times
    (ConvNeXt-Tiny: 1.4 s of a 6 s export). During the passes the writes are skipped, and so
    are the op counts each pass takes before and after itself only to log the difference
    (75 walks of the graph: 0.04 s of a MIRNet-style model's 0.46 s export).

    The one write left starts each node from a new message: the protobuf runtime (upb) keeps
    replaced attributes in the message's arena until the message dies, so rewriting in place
    would keep a second copy of the weights."""
    from onnx import NodeProto
    from tf2onnx import optimizer
    from tf2onnx.graph import Graph, Node

    write_node, write_graph, optimize = Node.update_proto, Graph.update_proto, \
        optimizer.optimize_graph
    count = Graph.dump_node_statistics

    def fresh_write(node: Any, external_tensor_storage: Any = None) -> None:
        old = node._op
        fields = {"name": old.name, "op_type": old.op_type, "domain": old.domain,
                  "doc_string": old.doc_string}
        node._op = NodeProto(**{key: value for key, value in fields.items() if value})
        write_node(node, external_tensor_storage)

    def optimize_unwritten(graph: Any, *args: Any, **kwargs: Any) -> Any:
        Graph.update_proto = lambda *_args, **_kwargs: None
        Graph.dump_node_statistics = _uncounted
        try:
            return optimize(graph, *args, **kwargs)
        finally:
            Graph.update_proto, Graph.dump_node_statistics = write_graph, count

    Node.update_proto = fresh_write
    optimizer.optimize_graph = optimize_unwritten
    try:
        yield
    finally:
        Node.update_proto, Graph.update_proto = write_node, write_graph
        optimizer.optimize_graph = optimize


@contextlib.contextmanager
def _transposes_scanned_alone() -> Iterator[None]:
    """tf2onnx's transpose optimizer scans the whole graph again after each rewrite, and acts
    only on ``Transpose`` nodes; this scan skips the other nodes before testing them (its tests
    are false for every other node) and is otherwise tf2onnx 1.17's, statement for statement,
    so the same rewrites happen in the same order. ConvNeXt-Tiny: 323 rewrites, 553,000 nodes
    tested, the optimizer 0.65 s → 0.42 s."""
    from tf2onnx.optimizer import transpose_optimizer as module

    optimizer = module.TransposeOptimizer
    scan = optimizer._optimize_at_current_graph_level

    def scan_transposes(self: Any, graph: Any) -> Any:
        self._g = graph
        self.pre_optimize_action()
        acted = True
        while acted:
            acted = False
            self._force_stop = {}
            for node in self.nodes:
                if node.type != "Transpose":
                    continue
                if module.is_transpose(node) and self._handle_nhwc_tranpose(node):
                    acted = self.graph_been_opt = True
                    break  # the handler may have changed the node list
                if graph.get_node_by_name(node.name) is not None \
                        and module.is_useless_transpose(node):
                    acted = True
                    self._remove_useless_tranpose(node)
                    break
            if self._force_stop.get("stop") == 1:
                break
        self.merge_duplicated_transposes()
        self.post_optimize_action()
        return self._g

    optimizer._optimize_at_current_graph_level = scan_transposes
    try:
        yield
    finally:
        optimizer._optimize_at_current_graph_level = scan


def _uncounted(_graph: Any, include_attrs: bool = False, include_subgraphs: bool = True
               ) -> Any:
    empty: collections.Counter[str] = collections.Counter()
    return (empty, collections.Counter()) if include_attrs else empty


def _erfc_as_one_minus_erf(graph: Any, node: Any, name: str, args: list[Any]) -> None:
    """TensorFlow's exact GELU (Keras' default ``gelu``, ConvNeXt's) computes ``erfc``, which
    tf2onnx 1.17 cannot export; ONNX has ``Erf``, and erfc(x) = 1 − erf(x)."""
    from tf2onnx import utils

    node.type = "Erf"
    dtype = utils.map_onnx_to_numpy_type(graph.get_dtype(node.input[0]))
    one = graph.make_const(utils.make_name(f"{name}_one"), np.array(1, dtype))
    graph.insert_new_node_on_output("Sub", node.output[0], inputs=[one.output[0], node.output[0]],
                                    name=utils.make_name(f"{name}_complement"))


def _model_io(model: Any, image_shape: tuple[int | None, ...]
              ) -> tuple[tuple[tuple[str, tuple[int | None, ...]], ...], list[str]]:
    """The model's inputs (name, shape with a batch axis of None) and output names; a
    subclassed model has one image input and one output."""
    names = input_names(model)
    if names is None:
        return (((INPUT_NAME, image_shape),), ["output_0"])
    if len(names) == 1:
        return (((names[0], image_shape),), list(model.output_names))
    inputs = []
    for name, tensor in zip(names, model.inputs, strict=True):
        shape = [None, *tuple(tensor.shape)[1:]]
        if len(shape) == 4 and len(image_shape) == 4:  # open sizes: the image input's
            shape[1] = shape[1] if shape[1] is not None else image_shape[1]
            shape[2] = shape[2] if shape[2] is not None else image_shape[2]
        inputs.append((name, tuple(None if d is None else int(d) for d in shape)))
    return tuple(inputs), list(model.output_names)


def _single(outputs: Any) -> Any:
    """The model's one output (a graph run returns a list for a one-output list model)."""
    return outputs[0] if isinstance(outputs, list | tuple) else outputs
