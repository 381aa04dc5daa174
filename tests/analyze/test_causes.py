"""The cause registry: every cause in the contract is registered once, and a new cause is one
``CauseAnalysis`` in ``CAUSES`` (findings, attribution and fixes all read from there)."""

from __future__ import annotations

import pytest

import qcheck.analyze as analyze
from qcheck.analyze.causes import CauseAnalysis, fixes_for
from qcheck.results import Finding
from qcheck.types import Action, Cause, Severity


def test_every_contract_cause_is_registered_once() -> None:
    assert sorted(a.cause.value for a in analyze.CAUSES) == sorted(c.value for c in Cause)
    assert len({a.order for a in analyze.CAUSES}) == len(analyze.CAUSES)


def test_fixes_follow_the_registered_causes() -> None:
    assert Action.INT16_ACTIVATIONS in fixes_for({Cause.ACTIVATION_RANGE}, analyze.CAUSES)
    assert Action.EXTEND_CALIBRATION in fixes_for({Cause.CALIBRATION_COVERAGE}, analyze.CAUSES)
    assert fixes_for({Cause.INPUT_RANGE}, analyze.CAUSES) == {Action.FIX_INPUT_RANGE}
    assert fixes_for(set(), analyze.CAUSES) == set()


def test_a_registered_cause_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    planted = Finding("conv", Cause.FP16_RANGE, Severity.WARNING, "planted")
    monkeypatch.setattr(analyze, "CAUSES", (
        CauseAnalysis(Cause.CHANNEL_MIXING, lambda evidence: [], lambda s, e, found: found, (),
                      order=1),
        CauseAnalysis(Cause.FP16_RANGE, lambda evidence: [planted], lambda s, e, found: found,
                      (), order=0)))
    assert analyze.find(None) == (planted,)  # type: ignore[arg-type]
