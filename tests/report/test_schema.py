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
