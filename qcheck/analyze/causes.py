"""What a cause is to qcheck: how it shows in the model (findings), how much drift it explains
in a target (attribution), and which fixes address it. Each cause module ends with one
``CauseAnalysis``; ``qcheck.analyze.CAUSES`` lists them, and that list is the only place a
new cause is registered."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from qcheck.analyze.evidence import ModelEvidence
from qcheck.analyze.simulate import Simulation
from qcheck.results import Attribution, Finding
from qcheck.types import Action, Cause

__all__ = ["Attribute", "CauseAnalysis", "fixes_for"]


class Attribute(Protocol):
    def __call__(self, sim: Simulation, evidence: ModelEvidence,
                 found: list[Attribution]) -> list[Attribution]:
        """Every attribution so far (``found``, from the causes measured before this one)
        plus this cause's own: a cause may also relabel what others found."""
        ...


@dataclass(frozen=True)
class CauseAnalysis:
    cause: Cause
    findings: Callable[[ModelEvidence], list[Finding]]
    attribute: Attribute
    # The fixes worth trying when this cause is among a target's top attributions.
    fixes: tuple[Action, ...]
    # When its attribution runs (lower first): activations are measured first because their
    # drift, mostly the larger, screens the weights' groups; relabelling runs last.
    order: int


def no_findings(evidence: ModelEvidence) -> list[Finding]:
    return []


def fixes_for(causes: Iterable[Cause], registry: Iterable[CauseAnalysis]) -> set[Action]:
    """The fixes the registered ``causes`` suggest."""
    wanted = set(causes)
    return {action for analysis in registry if analysis.cause in wanted
            for action in analysis.fixes}
