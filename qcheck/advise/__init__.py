"""Advise stage: propose fixes in the contract's vocabulary, apply each one qcheck can, convert
again, measure again, and rank by what was measured.

Verification converts through the same worker lanes and cache as the check, on the same images;
evaluation images never feed calibration.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from qcheck.advise.candidates import Candidate, ModelChange, candidates, widen
from qcheck.advise.equalize import equalize
from qcheck.advise.qat import qat_job
from qcheck.advise.verify import Trial, measure, rank, unverified
from qcheck.analyze.evidence import ModelEvidence
from qcheck.jobs import Job
from qcheck.limits import Thresholds
from qcheck.load.model import ModelHandle, model_from_memory
from qcheck.results import Suggestion, TargetResult
from qcheck.session import Session
from qcheck.types import Action, TargetSpec

__all__ = ["Candidate", "FixedArtifact", "advise", "keeps_scheme"]


@dataclass(frozen=True)
class FixedArtifact:
    """The best verified fix of one target, ready to ship."""

    suggestion: Suggestion
    content: bytes
    model: bytes | None = None  # the changed .keras model, when the fix changed the model
    model_label: str = ""  # names the .keras file ``qcheck fix`` writes ("equalized")
    recipe: str | None = None  # recipe.json, when the fix is a planned mixed-precision recipe


# Fixes that change a per-tensor target's numeric scheme, which an NPU or DSP may not run
# (tfmot's QAT scheme rounds Conv2D and Dense kernels per channel).
_SCHEME_CHANGES = {Action.PER_CHANNEL_WEIGHTS, Action.KEEP_FLOAT, Action.INT16_ACTIVATIONS,
                   Action.QUANTIZATION_AWARE_TRAINING}


def keeps_scheme(spec: TargetSpec, action: Action) -> bool:
    """Whether an artifact fixed by ``action`` still deploys where ``spec`` was meant to.

    A per-tensor target is taken as a hardware constraint: ``qcheck fix`` ships only fixes that
    keep per-tensor integer weights and activations there.
    """
    return spec.per_channel or not spec.precision.is_integer or action not in _SCHEME_CHANGES


def advise(session: Session, evidence: ModelEvidence, results: list[TargetResult],
           thresholds: Thresholds, *, verify: bool = True, qat: bool = False
           ) -> tuple[list[TargetResult], dict[str, FixedArtifact]]:
    """Attach verified suggestions to every failing target; return the best fix of each."""
    failing = [r for r in results if not r.passed and r.error is None and r.attribution]
    if not failing:
        return results, {}
    models = _FixModels(session, evidence)
    plans = {r.name: candidates(r, evidence, models.equalized_layers, qat=qat and verify)
             for r in failing}
    jobs: dict[tuple[str, Candidate], Job] = {}
    for result in failing if verify else []:  # nothing is built that will not be measured
        for candidate in plans[result.name]:
            job = models.job(result.spec, candidate)
            if job is not None:
                jobs[(result.name, candidate)] = job
    done = session.run_jobs(list(jobs.values())) if verify else {}
    advised: list[TargetResult] = []
    best: dict[str, FixedArtifact] = {}
    for result in results:
        if result.name not in plans:
            advised.append(result)
            continue
        trials = []
        for candidate in plans[result.name]:
            job = jobs.get((result.name, candidate))
            if job is None:
                trials.append(unverified(candidate, verify))
                continue
            trials.append(measure(candidate, done[job.key], result, session, thresholds))
            trials.extend(_widened(trials[-1], result, session, evidence, thresholds))
        ranked = rank(trials)
        advised.append(replace(result, suggestions=tuple(t.suggestion for t in ranked)))
        shipped = next((t for t in ranked if t.passed and t.content
                        and keeps_scheme(result.spec, t.suggestion.action)), None)
        if shipped is not None:
            best[result.name] = models.fixed(result.spec, shipped)
    return advised, best


def _widened(trial: Trial, result: TargetResult, session: Session, evidence: ModelEvidence,
             thresholds: Thresholds) -> list[Trial]:
    """A failing ``keep_float`` is tried again with the next weighted layer kept float too."""
    failed = trial.suggestion.verified is not None and not trial.passed
    if not failed or trial.candidate.action is not Action.KEEP_FLOAT:
        return []
    wider = widen(trial.candidate, evidence)
    if wider is None:
        return []
    retry = session.job(result.spec, options=wider.options)
    outcome = session.run_jobs([retry])[retry.key]
    return [measure(wider, outcome, result, session, thresholds)]


class _FixModels:
    """The changed Keras models fixes convert (equalized, bias-corrected per target), each
    built once and only when a fix that needs it is verified."""

    def __init__(self, session: Session, evidence: ModelEvidence):
        self.session = session
        self.equalized_model, pairs = equalize(evidence.model)
        self.equalized_layers = tuple(sorted({p.first for p in pairs} | {p.second
                                                                         for p in pairs}))
        self._handles: dict[tuple[ModelChange, str], ModelHandle] = {}

    def job(self, spec: TargetSpec, candidate: Candidate) -> Job | None:
        """The conversion that verifies ``candidate`` (``None``: advice to retrain)."""
        if candidate.model is ModelChange.FINE_TUNED:  # trains in a worker of its own
            return qat_job(self.session, spec)
        if candidate.options is None:
            return None
        return self.session.job(spec, options=candidate.options,
                                model=self.handle(candidate.model, spec))

    def handle(self, change: ModelChange, spec: TargetSpec) -> ModelHandle | None:
        if change in (ModelChange.NONE, ModelChange.FINE_TUNED):
            return None
        key = (change, spec.name if change is ModelChange.BIAS_CORRECTED else "")
        if key not in self._handles:
            model = self.equalized_model
            if change is ModelChange.BIAS_CORRECTED:
                model = self._bias_corrected(spec)
            self._handles[key] = self._saved(model, change.value)
        return self._handles[key]

    def fixed(self, spec: TargetSpec, trial: Trial) -> FixedArtifact:
        assert trial.content is not None
        handle = self.handle(trial.candidate.model, spec)
        model = handle.path.read_bytes() if handle is not None else None
        return FixedArtifact(trial.suggestion, trial.content, model,
                             "equalized" if model else "")

    def _bias_corrected(self, spec: TargetSpec) -> Any:
        from qcheck.advise.bias_correction import correct_biases
        from qcheck.analyze.schemes import scheme_for

        corrected, _ = correct_biases(self.equalized_model, scheme_for(spec),
                                      self.session.images.feed("calibration"))
        return corrected

    def _saved(self, model: Any, label: str) -> ModelHandle:
        """An in-memory model as a file the worker lanes can load."""
        described = model_from_memory(model)
        path = self.session.workdir / f"{label}-{described.info.sha256[:12]}.keras"
        model.save(path)
        # The user's own layers load from their file (the opt-in they gave for the model).
        return ModelHandle(path, replace(described.info, path=str(path)), described,
                           custom_objects=self.session.handle.custom_objects)
