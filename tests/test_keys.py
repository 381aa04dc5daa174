"""``JobKeys``: the one place that decides what each cache entry depends on."""

from __future__ import annotations

import pytest

import converters
from qcheck import cache
from qcheck.keys import JobKeys
from qcheck.types import InputRange

UNIT = InputRange.parse("0:1")


def _keys(model: str = "m", calibration: str = "c", evaluation: str = "e",
          value_range: InputRange = UNIT) -> JobKeys:
    return JobKeys(model, calibration, evaluation, value_range)


def _artifact(keys: JobKeys, target: str = "tflite-int8", run: bool = True, **options: object
              ) -> str:
    return keys.artifact(converters.TARGETS[target], dict(options), run=run)


def test_an_artifact_key_changes_with_everything_that_changes_the_artifact() -> None:
    base = _artifact(_keys())
    assert _artifact(_keys()) == base  # deterministic
    assert _artifact(_keys(model="other")) != base
    assert _artifact(_keys(calibration="other")) != base
    assert _artifact(_keys(evaluation="other")) != base  # it includes the outputs
    assert _artifact(_keys(value_range=InputRange.parse("-1:1"))) != base
    assert _artifact(_keys(), target="onnx-int8") != base
    assert _artifact(_keys(), per_channel=False) != base
    assert _artifact(_keys(), run=False) != base


def test_keys_leave_out_what_cannot_change_the_entry() -> None:
    # Float targets never see calibration images; an artifact that is not run never sees
    # the evaluation images.
    assert _artifact(_keys(), "tflite-fp16") == _artifact(_keys(calibration="x"), "tflite-fp16")
    assert _artifact(_keys(), run=False) == _artifact(_keys(evaluation="x"), run=False)
    assert _keys().reference("calibration") == _keys(evaluation="x").reference("calibration")
    assert _keys().reference("evaluation") != _keys(evaluation="x").reference("evaluation")


def test_assessments_and_findings_follow_their_inputs() -> None:
    from qcheck.outputs import OutputKind, OutputSpec

    image = OutputSpec(OutputKind.IMAGE, UNIT, 4, 3, "an RGB image")
    keys = _keys()
    assert keys.assessment("job", image) != keys.assessment("other job", image)
    assert keys.assessment("job", image) != _keys(calibration="x").assessment("job", image)
    signed = OutputSpec(OutputKind.IMAGE, InputRange.parse("-1:1"), 4, 3, "an RGB image")
    assert keys.assessment("job", image) != keys.assessment("job", signed)  # read otherwise
    classes = OutputSpec(OutputKind.CLASSES, UNIT, 4, 3, "a class map")
    assert keys.assessment("job", image) != keys.assessment("job", classes)
    assert keys.findings() != _keys(value_range=InputRange.parse("0:255")).findings()


def test_every_key_includes_the_library_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _artifact(_keys()), _keys().findings(), JobKeys.model_info("m")
    changed = {**cache.library_versions(), "tensorflow": "0.0.0-different"}
    monkeypatch.setattr(cache, "library_versions", lambda: changed)
    after = _artifact(_keys()), _keys().findings(), JobKeys.model_info("m")
    assert all(b != a for b, a in zip(before, after, strict=True))
