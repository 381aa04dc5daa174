"""Measure a re-converted fix exactly as its target was measured, and rank what was measured."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from qcheck.advise.candidates import COST, Candidate
from qcheck.assess import assess_outputs
from qcheck.jobs import JobResult
from qcheck.limits import Thresholds
from qcheck.readiness.contract import io_change, io_contract
from qcheck.readiness.coverage import float_ops
from qcheck.results import Suggestion, TargetResult, Verification
from qcheck.session import Session
from qcheck.types import Action, Format

__all__ = ["Trial", "measure", "rank", "unverified"]


@dataclass(frozen=True)
class Trial:
    """One candidate fix, what was measured of it, and the artifact measured (if any)."""

    candidate: Candidate
    suggestion: Suggestion
    content: bytes | None = None

    @property
    def passed(self) -> bool:
        return self.suggestion.verified is not None and self.suggestion.verified.passed


def measure(candidate: Candidate, outcome: JobResult, result: TargetResult, session: Session,
            thresholds: Thresholds) -> Trial:
    """Compare the re-converted artifact like any target: same images, same thresholds."""
    check = assess_outputs(result.spec, outcome, session.whole(), thresholds)
    if check.error is not None:
        return Trial(candidate, Suggestion(candidate.action, candidate.layers, candidate.reason,
                                           None, f"could not be verified: {check.error}"))
    # Several outputs: the figures of the output the fix was for; it passes when all do.
    verification = Verification.of(check.output_metrics(session.output_name), check.passed)
    reason = candidate.reason + _kept_float(candidate, result, outcome, session)
    return Trial(candidate, Suggestion(candidate.action, candidate.layers, reason,
                                       verification,
                                       io_change=_io_change(result, outcome, session)),
                 outcome.content)


def _kept_float(candidate: Candidate, result: TargetResult, outcome: JobResult,
                session: Session) -> str:
    """For 16-bit activations on TFLite: the ops the converter kept float because TFLite has
    no 16x8 kernel for them (they run between dequantize and quantize)."""
    if candidate.action is not Action.INT16_ACTIVATIONS or outcome.content is None \
            or result.spec.format is not Format.TFLITE:
        return ""
    issues = float_ops(Format.TFLITE, outcome.content, session.info.layers)
    ops = Counter(issue.op for issue in issues if issue.op not in _CONVERSIONS)
    if not ops:
        return ""
    layers = sorted({issue.layer for issue in issues if issue.op in ops and issue.layer})
    named = ", ".join(f"{op} ×{count}" for op, count in sorted(ops.items()))
    where = f" (in {', '.join(layers[:4])}{', …' if len(layers) > 4 else ''})" if layers else ""
    return (f"; kept float, as TFLite has no 16x8 kernel for them: {named}{where}; every "
            "other op runs with 16-bit activations")


_CONVERSIONS = {"QUANTIZE", "DEQUANTIZE"}


def _io_change(result: TargetResult, outcome: JobResult, session: Session) -> str | None:
    """What the fixed artifact changes in the target's I/O contract."""
    original = session.store.artifact(session.job(result.spec))
    if original is None or outcome.content is None:
        return None
    fmt = result.spec.format

    def contract(content: bytes) -> dict[str, object]:
        return io_contract(fmt, content, session.input_range, session.output_specs(),
                           session.images.evaluation.image_input)

    return io_change(contract(original.read_bytes()), contract(outcome.content))


def unverified(candidate: Candidate, verify: bool) -> Trial:
    note = candidate.note
    if note is None and not verify:
        note = "not verified: --no-fix-verification"
    return Trial(candidate, Suggestion(candidate.action, candidate.layers, candidate.reason,
                                       None, note))


def rank(trials: list[Trial]) -> list[Trial]:
    """Passing fixes first, cheapest first; then the rest by measured ΔE; advice last. The
    first passing one is marked ``best``."""
    def key(trial: Trial) -> tuple[int, float, float]:
        suggestion = trial.suggestion
        if suggestion.verified is None:
            return (2, 0.0, COST[suggestion.action])
        if suggestion.verified.passed:  # equally cheap variants: the better measured first
            return (0, COST[suggestion.action], suggestion.verified.score)
        return (1, suggestion.verified.score, COST[suggestion.action])

    ranked = sorted(trials, key=key)
    if ranked and ranked[0].passed:
        ranked[0] = replace(ranked[0], suggestion=replace(ranked[0].suggestion, best=True))
    return ranked
