"""A golden ``report.json`` shape: every object's keys, as the contract (qcheck.report/1) and
its documented additions give them. A change here is a change of the contract: make it on
purpose, update ``golden/report_keys.json`` and the README."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import qcheck

GOLDEN = Path(__file__).parent / "golden" / "report_keys.json"
FREE_FORM = ("evidence", "analysis")  # documented as open objects


def _keys(value: Any, path: str, found: dict[str, set[str]]) -> None:
    if isinstance(value, dict):
        found.setdefault(path, set()).update(value)
        for key, item in value.items():
            if key not in FREE_FORM:
                _keys(item, f"{path}.{key}", found)
    elif isinstance(value, list):
        for item in value:
            _keys(item, f"{path}[]", found)


def test_report_json_has_the_golden_shape(enhancer_path: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    limits = qcheck.Thresholds(max_delta_e=0.01)  # fails: attribution and verified fixes
    qcheck.check(str(enhancer_path), targets=["tflite-int8"], thresholds=limits,
                 save_baseline=baseline)
    report = qcheck.check(str(enhancer_path), targets=["tflite-int8"], thresholds=limits,
                          baseline=baseline)
    data = json.loads(report.to_json())
    found: dict[str, set[str]] = {}
    _keys(data, "$", found)
    golden = json.loads(GOLDEN.read_text())
    assert data["schema"] == "qcheck.report/1"
    assert {path: sorted(keys) for path, keys in sorted(found.items())} == golden


def test_a_model_with_several_outputs_adds_outputs_to_each_target_and_nothing_else(
        tmp_path: Path) -> None:
    """The documented addition: each target gains ``outputs[]`` (name, kind, range, reason,
    passed, metrics, failures, artifacts_seen) with the very metric keys a target has; every
    other object keeps its golden keys."""
    from tests.field_models.multi_io import two_head

    path = tmp_path / "two_head.keras"
    two_head().save(path)
    report = qcheck.check(str(path), targets=["tflite-int8"], analysis=False, readiness=False)
    found: dict[str, set[str]] = {}
    _keys(json.loads(report.to_json()), "$", found)
    golden = json.loads(GOLDEN.read_text())
    added = {path: keys for path, keys in found.items() if path not in golden}
    assert set(added) <= {"$.targets[].outputs[]", "$.targets[].outputs[].metrics",
                          "$.targets[].outputs[].metrics.channel_bias"}
    assert sorted(added["$.targets[].outputs[]"]) == [
        "artifacts_seen", "failures", "kind", "metrics", "name", "passed", "range", "reason"]
    assert sorted(added["$.targets[].outputs[].metrics"]) == golden["$.targets[].metrics"]
    for path, keys in found.items():
        if path in golden:
            extra = set(keys) - set(golden[path])
            assert extra == ({"outputs"} if path == "$.targets[]" else set()), path
    assert [o["name"] for o in report.to_dict()["targets"][0]["outputs"]] == \
        ["enhanced", "confidence"]
