"""``qcheck plan``: mixed-precision recipes measured with the real converters, and rebuilt
from ``recipe.json`` by ``qcheck convert --recipe``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

import converters
import qcheck
from qcheck.cli import main
from qcheck.planner import Choice, Recipe
from sample_models.catalog import SAMPLES


@pytest.fixture(scope="module")
def two_traps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``two_traps`` sample model at 32×32, trained for seconds."""
    import keras

    from sample_models.build import bundled_crops, grade, two_traps

    crops = bundled_crops(160, 32, seed=7)
    keras.utils.set_random_seed(0)
    model = two_traps(crops, grade(crops), epochs=24)
    path = tmp_path_factory.mktemp("plan") / "two_traps.keras"
    model.save(path)
    return path


def test_fix_plans_when_no_single_fix_passes(two_traps: Path, tmp_path: Path) -> None:
    report, shipped = qcheck.fix(two_traps, "tflite-int8", out=tmp_path / "fixed")
    result = report.target("tflite-int8")
    assert not result.passed
    single = [s for s in result.suggestions if not s.reason.startswith("planned")]
    verified = [s for s in single if s.verified is not None]
    assert verified and not any(s.verified.passed for s in verified)  # type: ignore[union-attr]
    plan = result.plan
    assert plan is not None and plan.chosen is not None
    chosen = plan.points[plan.chosen]
    assert chosen.passed and 2 <= len(chosen.recipe.layers) <= 3
    assert {"trap_a", "trap_b"} <= {name for name, _ in chosen.recipe.layers}
    assert shipped is not None and shipped.exists()
    recipe = json.loads((tmp_path / "fixed" / "recipe.json").read_text())
    assert recipe["passed"] and recipe["target"] == "tflite-int8"
    assert recipe["toolchains"]["ai_edge_quantizer"][0]["regex"] == ".*"
    # A CI job rebuilds exactly what was planned from the recipe file.
    rebuilt = tmp_path / "rebuilt.tflite"
    assert main(["convert", str(two_traps), "--target", "tflite-int8", "--recipe",
                 str(tmp_path / "fixed" / "recipe.json"), "-o", str(rebuilt)]) == 0
    assert rebuilt.read_bytes() == shipped.read_bytes()


@pytest.mark.compat
def test_plan_onnx_front_recipe_and_round_trip(two_traps: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    assert main(["plan", str(two_traps), "--target", "onnx-int8", "-o", str(out),
                 "--quiet"]) == 0
    plan = json.loads((out / "plan.json").read_text())
    assert plan["passed"] and plan["candidates_measured"] >= 3
    assert plan["candidates_converted"] >= 1
    chosen = plan["points"][plan["chosen"]]
    assert chosen["passed"] and chosen["metrics"]["delta_e_p95"] <= 5.0
    assert plan["chosen"] in plan["front"]
    # The default objective, and what came second and why, are part of the plan.
    assert plan["objective"] == "balanced" and "runner_up_lost" in plan
    # Latency is measured (like readiness) for every point that could be chosen.
    assert chosen["latency_ms"] is not None and chosen["latency_ms"] > 0
    assert all(plan["points"][i]["latency_ms"] for i in plan["front"])
    assert plan["latency_front"]
    # Every point on the front is measured and none of them dominates another.
    front = [plan["points"][i] for i in plan["front"]]
    sizes = [p["size_bytes"] for p in front]
    assert sizes == sorted(sizes)
    assert all(a["metrics"]["delta_e_p95"] > b["metrics"]["delta_e_p95"]
               for a, b in itertools.pairwise(front))
    recipe = json.loads((out / "recipe.json").read_text())
    excluded = recipe["toolchains"]["onnxruntime"]["nodes_to_exclude"]
    floats = [name for name, choice in recipe["layers"].items() if choice == "float"]
    assert floats and all(any(node.startswith(f"{layer}/") for node in excluded)
                          for layer in floats)
    assert "plan.html" in {p.name for p in out.iterdir()}
    assert "data:image/png;base64," in (out / "plan.html").read_text()
    rebuilt = tmp_path / "rebuilt.onnx"
    assert main(["convert", str(two_traps), "--target", "onnx-int8", "--recipe",
                 str(out / "recipe.json"), "-o", str(rebuilt)]) == 0
    assert rebuilt.read_bytes() == (out / "onnx-int8.planned.onnx").read_bytes()
    # Without the cache the float export is made again (tf2onnx's node order may differ
    # between processes): the rebuilt artifact computes the same outputs.
    fresh = qcheck.convert(two_traps, "onnx-int8", out=tmp_path / "fresh.onnx", cache=False,
                           recipe=out / "recipe.json")
    images = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    assert np.allclose(_onnx_outputs(fresh, images), _onnx_outputs(rebuilt, images), atol=1e-6)


def _onnx_outputs(path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"image": image[None]})[0] for image in images])


def test_per_tensor_plan_keeps_per_tensor_weights(tmp_path: Path) -> None:
    trap = next(s for s in SAMPLES if s.name == "per_tensor_trap")
    outcome = qcheck.plan(trap.path, "tflite-int8-per-tensor", out=tmp_path)
    assert outcome.passed and outcome.plan is not None
    artifact = outcome.plan.artifact
    assert artifact is not None
    from ai_edge_litert.interpreter import Interpreter

    weights = [d for d in Interpreter(model_content=artifact).get_tensor_details()
               if d["dtype"] == np.int8 and len(d["shape"]) == 4]
    assert weights, "the planned artifact still has int8 convolution weights"
    assert all(len(d["quantization_parameters"]["scales"]) == 1 for d in weights)


def test_budget_stops_the_search_and_says_so(two_traps: Path) -> None:
    outcome = qcheck.plan(two_traps, "tflite-int8", budget_seconds=0.001)
    plan = outcome.plan
    assert plan is not None and plan.stopped == "budget"
    # Only the starting points (all-int8, by each TFLite quantizer) were measured.
    assert 1 <= len(plan.points) <= 2 and all(p.recipe.layers == () for p in plan.points)


def test_layer_names_resolve_to_each_converters_nodes(two_traps: Path) -> None:
    import keras

    from converters.aeq import aeq_recipe, layer_outputs
    from converters.onnx import onnx_recipe

    source = converters.ConversionSource(keras.saving.load_model(two_traps), (None, 32, 32, 3))
    float_tflite = source.tflite_float_signed
    outputs = layer_outputs(float_tflite, ["trap_a", "residual"], last_layer="residual")
    assert outputs["trap_a"] and all("trap_a/" in name for name in outputs["trap_a"])
    assert outputs["residual"]  # the final op, renamed after the graph's output
    options = Recipe("tflite-int8").with_choice("trap_a", Choice.INT16).with_choice(
        "trap_b", Choice.FLOAT).options()
    recipe = aeq_recipe(float_tflite, True, options)
    assert [entry.get("algorithm_key") for entry in recipe[1:]] == [
        "min_max_uniform_quantize", "no_quantize"]
    assert recipe[1]["op_config"]["activation_tensor_config"]["num_bits"] == 16
    onnx_names = onnx_recipe(source.onnx_float, options)
    assert all(name.startswith("trap_a/") for name in onnx_names["TensorQuantOverrides"])
    assert onnx_names["nodes_to_exclude"] and all(
        name.startswith("trap_b/") for name in onnx_names["nodes_to_exclude"])
    with pytest.raises(converters.ConversionError, match="conv9"):
        layer_outputs(float_tflite, ["conv9"])


def test_bad_recipe_is_a_usage_error(two_traps: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "recipe.json"
    bad.write_text(json.dumps({"schema": "qcheck.recipe/1", "target": "tflite-int8",
                               "layers": {"trap_a": "int4"}}))
    assert main(["convert", str(two_traps), "--target", "tflite-int8", "--recipe", str(bad),
                 "-o", str(tmp_path / "x.tflite")]) == 2
    err = capsys.readouterr().err
    assert "int4" in err and "int8, int16, float" in err and "Traceback" not in err
    assert main(["convert", str(two_traps), "--target", "onnx-int8", "--recipe",
                 str(bad.with_name("missing.json")), "-o", str(tmp_path / "x.onnx")]) == 2


@pytest.mark.compat
def test_an_int16_recipe_builds_with_ai_edge_quantizer_reproducibly(two_traps: Path,
                                                                    tmp_path: Path) -> None:
    recipe = Recipe("tflite-int8").with_choice("trap_a", Choice.INT16).with_choice(
        "trap_b", Choice.FLOAT)
    assert recipe.tflite_quantizer == "ai-edge-quantizer"
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe.to_dict()))
    built = [tmp_path / "a.tflite", tmp_path / "b.tflite"]
    for artifact in built:
        assert main(["convert", str(two_traps), "--target", "tflite-int8", "--recipe", str(path),
                     "-o", str(artifact), "--input-range", "0:1"]) == 0
    assert built[0].read_bytes() == built[1].read_bytes()
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_content=built[0].read_bytes()).get_tensor_details()
    kinds = {d["name"]: d["dtype"] for d in details}
    assert any(name.startswith("trap_a/") and dtype == np.int16 for name, dtype in kinds.items())
    assert any(name.startswith("trap_b/") and dtype == np.float32
               for name, dtype in kinds.items())


def test_the_output_layer_can_stay_float_on_tflite(two_traps: Path) -> None:
    """TFLite names the op that writes the graph's output after the output, not after its
    layer (here the final ``residual`` add): keeping that layer float still finds it."""
    import keras
    from ai_edge_litert.interpreter import Interpreter

    source = converters.ConversionSource(keras.saving.load_model(two_traps), (None, 32, 32, 3))
    images = np.random.default_rng(0).random((4, 1, 32, 32, 3), dtype=np.float32)
    for quantizer in ("converter", "ai-edge-quantizer"):
        options = converters.ConversionOptions(keep_float=("residual",),
                                               tflite_quantizer=quantizer)
        content = converters.convert(converters.TARGETS["tflite-int8"], source,
                                     lambda: iter(images), options=options)
        ops = Interpreter(model_content=content)._get_ops_details()
        last = ops[-1]
        assert last["op_name"] == "ADD", (quantizer, [o["op_name"] for o in ops])
        details = Interpreter(model_content=content).get_tensor_details()
        dtypes = {d["index"]: d["dtype"] for d in details}
        assert all(dtypes[i] == np.float32 for i in last["inputs"]), quantizer


def test_plan_refuses_targets_without_integer_activations(two_traps: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    assert main(["plan", str(two_traps), "--target", "tflite-fp16", "-o",
                 str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "tflite-fp16" in err and "tflite-int8" in err and "Traceback" not in err
    assert not (tmp_path / "p").exists()
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"schema": "qcheck.recipe/1", "target": "onnx-fp16",
                                  "layers": {"trap_a": "float"}}))
    assert main(["convert", str(two_traps), "--target", "onnx-fp16", "--recipe", str(recipe),
                 "-o", str(tmp_path / "x.onnx")]) == 2
    assert "cannot take a recipe" in capsys.readouterr().err
