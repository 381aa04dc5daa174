"""Per-layer drift on the graph: Model Explorer node-data overlays and the HTML graph strip.

Each overlay is one Model Explorer ``ModelNodeData`` file keyed by the artifact's own node ids
(the TFLite adapter's op indices, the ONNX adapter's node names), resolved from the Keras layer
names the way attribution resolves them (``converters.naming``), so it loads onto the
``.tflite``/``.onnx`` as written. Overlays, per target:

- ``delta_e`` (or the output's own measure): the drift when only that layer is quantized, the
  worst of its causes; ``delta_e.<cause>`` the same for one cause;
- ``share``: the layer's part of the drift attributed to all layers (sums to 1);
- ``chroma_share``: the part of the layer's drift that is colour rather than lightness;
- ``clipped_fraction``: the share of the layer's outputs its calibrated range clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from converters.naming import onnx_node_names
from qcheck.results import Attribution, TargetResult
from qcheck.types import Cause, Format

__all__ = ["EXPLORER_DIR", "LayerDrift", "explorer_files", "layer_drift", "node_ids",
           "overlays", "strip_colour"]

EXPLORER_DIR = "artifacts/explorer"
# White to red: the worst layer is the one that stands out.
GRADIENT: tuple[tuple[float, str], ...] = ((0.0, "#ffffff"), (0.5, "#fdae61"), (1.0, "#d7191c"))


@dataclass
class LayerDrift:
    """Everything attribution measured of one Keras layer for one target."""

    layer: str
    measure: str
    drift: float = 0.0  # the worst of its causes
    causes: dict[str, float] = field(default_factory=dict)
    chroma_share: float | None = None
    clipped_fraction: float | None = None
    share: float = 0.0
    # Measured on real artifacts (``qcheck.analyze.confirm``; None: not measured).
    relief: float | None = None
    measured: float | None = None


def layer_drift(attribution: Sequence[Attribution]) -> dict[str, LayerDrift]:
    """Each attributed layer's drift, worst cause first, with its share of the total."""
    found: dict[str, LayerDrift] = {}
    for item in attribution:
        entry = found.setdefault(item.layer, LayerDrift(item.layer, item.measure))
        entry.causes[item.cause.value] = max(entry.causes.get(item.cause.value, 0.0), item.drift)
        entry.drift = max(entry.drift, item.drift)
        if item.relief is not None:
            entry.relief, entry.measured = item.relief, item.measured
        for name in ("chroma_share", "clipped_fraction"):
            value = item.evidence.get(name)
            if isinstance(value, int | float):
                current = getattr(entry, name)
                setattr(entry, name, float(value) if current is None else max(current, value))
    total = sum(entry.drift for entry in found.values())
    for entry in found.values():
        entry.share = entry.drift / total if total > 0 else 0.0
    return found


def overlays(drifts: dict[str, LayerDrift]) -> dict[str, dict[str, float]]:
    """Overlay name → layer → value."""
    found: dict[str, dict[str, float]] = {}
    for entry in drifts.values():
        found.setdefault(entry.measure, {})[entry.layer] = entry.drift
        for cause, value in entry.causes.items():
            found.setdefault(f"{entry.measure}.{cause}", {})[entry.layer] = value
        found.setdefault("share", {})[entry.layer] = entry.share
        for name in ("chroma_share", "clipped_fraction", "relief", "measured"):
            value = getattr(entry, name)
            if value is not None:
                found.setdefault(name, {})[entry.layer] = value
    return found


INPUT = "<input>"  # the nodes that take the model's input before any layer does


@dataclass(frozen=True)
class _Node:
    id: str
    names: list[str]  # what names it after a layer: its own, its outputs', its weights'
    inputs: list[str]
    outputs: list[str]


def node_ids(fmt: Format, content: bytes, layers: Sequence[str], output_layer: str | None = None
             ) -> tuple[str, dict[str, list[str]]]:
    """The artifact's graph id and, per Keras layer, the ids of the nodes that belong to it,
    as Model Explorer's adapters read them. Nodes of no layer that read the model's input
    (its quantization) are listed under ``INPUT``; those of no layer between the last named
    node and the graph's output (a renamed final op, the output's requantization) belong to
    ``output_layer``."""
    from qcheck.readiness.coverage import layer_of

    read = _tflite_nodes if fmt is Format.TFLITE else _onnx_nodes
    graph_id, nodes, graph_inputs, graph_outputs = read(content)
    layer_by_node = {node.id: layer_of(node.names, layers) for node in nodes}
    producer = {output: node for node in nodes for output in node.outputs}
    pending = [producer[name] for name in graph_outputs if name in producer]
    while output_layer is not None and pending:
        node = pending.pop()
        if layer_by_node[node.id] is None and not graph_inputs & set(node.inputs):
            layer_by_node[node.id] = output_layer
            pending.extend(producer[name] for name in node.inputs if name in producer)
    owned: dict[str, list[str]] = {}
    for node in nodes:
        layer = layer_by_node[node.id]
        if layer is None and graph_inputs & set(node.inputs):
            layer = INPUT
        if layer is not None:
            owned.setdefault(layer, []).append(node.id)
    return graph_id, owned


_Graph = tuple[str, list[_Node], set[str], list[str]]


def _tflite_nodes(content: bytes) -> _Graph:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(content, 0)
    subgraph = model.Subgraphs(0)
    graph_id = (subgraph.Name() or b"").decode() or "main"
    names = [(subgraph.Tensors(i).Name() or b"").decode()
             for i in range(subgraph.TensorsLength())]
    nodes = []
    for index in range(subgraph.OperatorsLength()):
        operator = subgraph.Operators(index)
        inputs = [names[int(i)] for i in operator.InputsAsNumpy() if int(i) >= 0]
        outputs = [names[int(i)] for i in operator.OutputsAsNumpy() if int(i) >= 0]
        nodes.append(_Node(str(index), outputs, inputs, outputs))
    return (graph_id, nodes, {names[int(i)] for i in subgraph.InputsAsNumpy()},
            [names[int(i)] for i in subgraph.OutputsAsNumpy()])


def _onnx_nodes(content: bytes) -> _Graph:
    import onnx

    graph = onnx.load_from_string(content).graph
    weights = {init.name for init in graph.initializer}
    nodes = [_Node(node.name, onnx_node_names(node, weights), list(node.input),
                   list(node.output)) for node in graph.node if node.name]
    return (graph.name, nodes, {value.name for value in graph.input} - weights,
            [value.name for value in graph.output])


def node_data(graph_id: str, values: dict[str, float], ids: dict[str, list[str]], name: str
              ) -> dict[str, Any]:
    """One overlay as Model Explorer's ``ModelNodeData`` JSON."""
    results = {node: {"value": round(float(value), 6)}
               for layer, value in values.items() for node in ids.get(layer, ())}
    gradient = [{"stop": stop, "bgColor": colour} for stop, colour in GRADIENT]
    return {graph_id: {"name": name, "results": results, "gradient": gradient}}


def explorer_files(targets: Sequence[TargetResult], artifacts: dict[str, bytes],
                   layers: Sequence[str], output_layer: str | None = None) -> dict[str, str]:
    """``artifacts/explorer/<target>.<overlay>.json`` for every attributed target."""
    import json

    files = {}
    for result in targets:
        content = artifacts.get(result.name)
        if not result.attribution or content is None:
            continue
        graph_id, ids = node_ids(result.spec.format, content, layers, output_layer)
        through = (result.analysis or {}).get("output")  # of several outputs, the one named
        for name, values in overlays(layer_drift(result.attribution)).items():
            title = f"qcheck {result.name}: {name}" + (f" (output {through})" if through else "")
            data = node_data(graph_id, _on_input(values, ids, result.attribution), ids, title)
            if not next(iter(data.values()))["results"]:
                continue  # only layers the artifact has no node of (a float target's input)
            files[f"{EXPLORER_DIR}/{result.name}.{name}.json"] = json.dumps(data, indent=1)
    return files


def _on_input(values: dict[str, float], ids: dict[str, list[str]],
              attribution: Sequence[Attribution]) -> dict[str, float]:
    """The input layer's value on the nodes that quantize the input (it has none of its own)."""
    inputs = {a.layer for a in attribution if a.cause is Cause.INPUT_RANGE}
    moved = dict(values)
    for layer in inputs & set(values):
        if layer not in ids and INPUT in ids:
            moved[INPUT] = moved.pop(layer)
    return moved


def strip_colour(share: float, worst: float) -> str:
    """The strip's colour for a layer: white to red by its share relative to the worst."""
    position = 0.0 if worst <= 0 else max(0.0, min(1.0, share / worst))
    (low, low_colour), (high, high_colour) = (GRADIENT[0], GRADIENT[1]) if position <= 0.5 \
        else (GRADIENT[1], GRADIENT[2])
    local = (position - low) / (high - low)
    channels = [round(int(low_colour[i:i + 2], 16) * (1 - local)
                      + int(high_colour[i:i + 2], 16) * local) for i in (1, 3, 5)]
    return "#" + "".join(f"{c:02x}" for c in channels)
