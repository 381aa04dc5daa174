"""Model Explorer overlays load with Model Explorer's own classes and adapters, keyed by the
artifact's node ids; the HTML graph strip is drawn by a real browser."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qcheck.cli import main
from qcheck.report.explorer import EXPLORER_DIR
from tests import tiny_models

TARGETS = ("tflite-int8", "onnx-int8")
OUTPUT_LAYER = "residual"  # the tiny enhancer's last layer


@pytest.fixture(scope="module")
def explored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A check that fails both int8 targets, written with ``--explorer``."""
    folder = tmp_path_factory.mktemp("explorer")
    model = tiny_models.build_enhancer(epochs=5)
    model.save(folder / "model.keras")
    code = main(["check", str(folder / "model.keras"), "--targets", ",".join(TARGETS),
                 "--max-delta-e", "0.01", "--no-fix-verification", "--no-readiness",
                 "--explorer", "--out", str(folder / "out"), "--quiet"])
    assert code == 1
    return folder / "out"


def _adapter_graph(artifact: Path) -> Any:
    if artifact.suffix == ".tflite":
        from model_explorer.builtin_tflite_flatbuffer_adapter import (
            BuiltinTfliteFlatbufferAdapter,
        )

        collection = BuiltinTfliteFlatbufferAdapter().convert(str(artifact), {})
        graph = collection["graphCollections"][0].graphs[0]
        return graph["id"], {node["id"]: node for node in graph["nodes"]}
    from model_explorer_onnx.main import ONNXAdapter

    graph = ONNXAdapter().convert(str(artifact), {})["graphs"][0]
    return graph.id, {node.id: node for node in graph.nodes}


def _load_with_model_explorer(path: Path) -> Any:
    """The file parsed into Model Explorer's own dataclasses (unknown fields raise)."""
    from model_explorer.node_data_builder import (
        GradientItem,
        GraphNodeData,
        ModelNodeData,
        NodeDataResult,
    )

    raw = json.loads(path.read_text())
    graphs = {}
    for graph_id, data in raw.items():
        results = {key: NodeDataResult(**value) for key, value in data.pop("results").items()}
        gradient = [GradientItem(**item) for item in data.pop("gradient")]
        graphs[graph_id] = GraphNodeData(results=results, gradient=gradient, **data)
    loaded = ModelNodeData(graphsData=graphs)
    again = json.loads(loaded.to_json_string())  # with Model Explorer's defaults added
    for graph_id, data in json.loads(path.read_text()).items():
        assert {key: again[graph_id][key] for key in data} == data
    return loaded


@pytest.mark.parametrize("target", TARGETS)
def test_every_overlay_key_is_a_node_of_the_artifact(explored: Path, target: str) -> None:
    pytest.importorskip("model_explorer", reason="the explorer extra is not installed")
    report = json.loads((explored / "report.json").read_text())
    result = next(t for t in report["targets"] if t["name"] == target)
    files = sorted((explored / EXPLORER_DIR).glob(f"{target}.*.json"))
    names = {path.name.removeprefix(f"{target}.").removesuffix(".json") for path in files}
    assert {"delta_e", "share", "chroma_share"} <= names, names
    graph_id, nodes = _adapter_graph(explored / result["artifact"])
    worst = max(result["attribution"], key=lambda a: a["value"])["layer"]
    for path in files:
        loaded = _load_with_model_explorer(path)
        assert list(loaded.graphsData) == [graph_id]
        results = loaded.graphsData[graph_id].results
        assert results, path.name
        assert set(results) <= set(nodes), set(results) - set(nodes)
    share = _load_with_model_explorer(explored / EXPLORER_DIR / f"{target}.share.json")
    values = share.graphsData[graph_id].results
    assert all(0.0 <= v.value <= 1.0 for v in values.values())
    worst_nodes = [key for key, value in values.items()
                   if value.value == max(v.value for v in values.values())]
    # The worst layer's nodes are the artifact's nodes of that layer, by the adapter's names.
    labels = [_node_names(nodes[key], explored / result["artifact"]) for key in worst_nodes]
    assert all(any(name == worst or name.startswith(f"{worst}/") for name in names)
               for names in labels), (worst, labels)


def _node_names(node: Any, artifact: Path) -> list[str]:
    """What names a node after a Keras layer: (TFLite) the output tensors Model Explorer
    shows, following a renamed output op to the graph's output; (ONNX) its name, outputs and
    weights (an output's requantization shares its producer's scale)."""
    if isinstance(node, dict):
        outputs = [attr["value"] for meta in node.get("outputsMetadata", [])
                   for attr in meta["attrs"] if attr["key"] == "tensor_name"]
        renamed = [f"{OUTPUT_LAYER}/" for name in outputs if name.startswith("Identity")]
        return [part for name in outputs for part in name.split(";")] + renamed
    import onnx

    graph = onnx.load(str(artifact)).graph
    weights = {init.name for init in graph.initializer}
    found = next(n for n in graph.node if n.name == node.id)
    return [found.name, *found.output, *(i for i in found.input if i in weights)]


def test_explore_names_the_artifact_and_its_overlays(explored: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", str(explored), "--target", "onnx-int8", "--no-open"]) == 0
    out = capsys.readouterr().out
    assert "model-explorer" in out and "onnx-int8.onnx" in out
    assert "--extensions=model_explorer_onnx" in out
    assert f"{EXPLORER_DIR}/onnx-int8.delta_e.json" in out


def test_explore_without_overlays_is_a_usage_error(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", str(tmp_path), "--no-open"]) == 2
    assert "no report.json" in capsys.readouterr().err


def test_explore_names_the_valid_targets(explored: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", str(explored), "--target", "tflite-fp16", "--no-open"]) == 2
    err = capsys.readouterr().err
    assert "tflite-int8" in err and "onnx-int8" in err


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
        "google-chrome")


def _screenshot(page: Path, into: Path) -> np.ndarray:
    from PIL import Image

    browser = _chromium()
    assert browser is not None
    shot = into / f"{page.parent.name}.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1280,6000",
                    page.as_uri()], check=True, capture_output=True, timeout=120)
    with Image.open(shot) as image:
        return np.asarray(image.convert("RGB"))


def _strip_rows(pixels: np.ndarray) -> int:
    """Rows holding a run of at least 8 pixels of the strip's worst-layer red (#d7191c)."""
    red = np.all(np.abs(pixels.astype(int) - [0xd7, 0x19, 0x1c]) <= 3, axis=-1)
    runs = np.array([np.max(np.diff(np.flatnonzero(np.diff(np.r_[0, row, 0]))
                                    .reshape(-1, 2), axis=1), initial=0) for row in red])
    return int((runs >= 8).sum())


@pytest.mark.skipif(_chromium() is None,
                    reason="Chromium is not installed (apt-get install chromium)")
def test_the_graph_strip_is_drawn_in_a_browser(explored: Path, tmp_path: Path) -> None:
    page = (explored / "report.html").read_text()
    assert page.count('class="graph-strip"') == 2
    drawn = _screenshot(explored / "report.html", tmp_path)
    assert _strip_rows(drawn) >= 2 * 20, "the failing targets' strips are not on the page"
    passing = tmp_path / "passing"
    passing.mkdir()
    # The same page with the strip's cells unstyled: nothing of the strip is drawn.
    (passing / "report.html").write_text(page.replace('class="layer-cell"', 'class="gone"'))
    assert _strip_rows(_screenshot(passing / "report.html", tmp_path)) == 0


@pytest.mark.parametrize("target", TARGETS)
def test_nested_default_named_layers_land_on_their_own_nodes(tmp_path: Path,
                                                             target: str) -> None:
    """keras-io's Zero-DCE: a nested ``dce_net`` and default names (``conv2d_1``, ``add_3``):
    each layer's overlay value sits on nodes that belong to that layer's path."""
    pytest.importorskip("model_explorer", reason="the explorer extra is not installed")
    from tests.field_models import architectures

    architectures.zero_dce().save(tmp_path / "zero_dce.keras")
    out = tmp_path / "out"
    assert main(["check", str(tmp_path / "zero_dce.keras"), "--targets", target,
                 "--no-fix-verification", "--no-readiness", "--explorer", "--out", str(out),
                 "--quiet"]) in (0, 1)
    result = json.loads((out / "report.json").read_text())["targets"][0]
    graph_id, nodes = _adapter_graph(out / result["artifact"])
    overlay = _load_with_model_explorer(out / EXPLORER_DIR / f"{target}.delta_e.json")
    results = overlay.graphsData[graph_id].results
    assert set(results) <= set(nodes)
    drift = {}
    for item in result["attribution"]:
        drift[item["layer"]] = max(drift.get(item["layer"], 0.0), item["value"])
    nested = [layer for layer in drift if layer.startswith("dce_net/")]
    assert nested, drift
    for layer in nested:
        keys = [key for key, value in results.items()
                if abs(value.value - round(drift[layer], 6)) < 1e-9]
        assert keys, layer
        assert any(any(name == layer or name.startswith(f"{layer}/")
                       for name in _node_names(nodes[key], out / result["artifact"]))
                   for key in keys), (layer, keys)
