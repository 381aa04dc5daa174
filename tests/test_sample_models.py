"""The committed sample models keep the verdicts their README documents."""

from __future__ import annotations

from pathlib import Path

import pytest

import qcheck
from sample_models.catalog import SAMPLES, SampleModel


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_sample_model_verdicts(sample: SampleModel) -> None:
    assert sample.path.stat().st_size < 1_000_000
    report = qcheck.check(sample.path, targets=list(sample.verdicts),
                          input_range=sample.input_range)
    observed = {t.name: t.passed for t in report.targets}
    assert observed == sample.verdicts
    assert all(t.error is None for t in report.targets)


def test_per_tensor_trap_fails_with_a_visible_cast() -> None:
    (sample,) = [s for s in SAMPLES if s.name == "per_tensor_trap"]
    report = qcheck.check(sample.path, targets=["tflite-int8", "tflite-int8-per-tensor"])
    per_channel, per_tensor = report.target("tflite-int8"), report.target("tflite-int8-per-tensor")
    assert per_tensor.metrics.delta_e_mean > 3 * per_channel.metrics.delta_e_mean
    assert "tint" in [a.value for a in per_tensor.artifacts_seen]


@pytest.mark.slow
def test_build_script_reproduces_the_verdicts(tmp_path: Path) -> None:
    from sample_models import build

    assert build.main(["healthy", "per_tensor_trap", "--out", str(tmp_path)]) == 0
    for sample in SAMPLES:
        rebuilt = tmp_path / f"{sample.name}.keras"
        if not rebuilt.exists():
            continue
        report = qcheck.check(rebuilt, targets=list(sample.verdicts),
                              input_range=sample.input_range)
        assert {t.name: t.passed for t in report.targets} == sample.verdicts
