"""The check, end to end: load → convert → run → compare → analyze → advise → report.

Every target sees the same preprocessed images: one calibration feed drives every converter and
one evaluation feed drives the float model and every runner. Conversions run in worker
processes while this process compares each finished target on a thread of its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

import converters
from converters.graph import is_graph_model
from qcheck.advise import FixedArtifact, advise
from qcheck.analyze import attribute, attribution_images, find, gather_evidence
from qcheck.analyze.confirm import confirm
from qcheck.analyze.evidence import ModelEvidence
from qcheck.assess import assess_outputs
from qcheck.cache import Cache
from qcheck.compare.visuals import TargetVisuals
from qcheck.jobs import ConvertJob, Job, JobKind, JobResult, Lane
from qcheck.limits import Thresholds, Tolerances
from qcheck.load.image_sets import ImagesArg
from qcheck.memory import release_free_memory
from qcheck.planner.attach import PlanRequest, attach_plans
from qcheck.readiness.measure import measure_readiness, untimed_jobs
from qcheck.report import charts
from qcheck.report.baseline import (
    compare_baseline,
    judged_name,
    load_baseline,
    output_digests,
    save_baseline,
)
from qcheck.report.core import Report
from qcheck.results import BaselineResult, Finding, TargetResult
from qcheck.session import Session
from qcheck.settings import ImageSources, ModelSettings, RunSwitches
from qcheck.types import Cause, InputRange, Severity, TargetSpec
from qcheck.validate import resolve_targets
from qcheck.version import __version__
from qcheck.workdir import work_folder
from qcheck.workers import WorkerLanes

__all__ = ["check"]

ProgressFn = Callable[[str], None]
# Evaluation pixels up to which two targets are compared at the same time (64 at 224×224).
COMPARE_TWO_PIXELS = 64 * 224 * 224


def check(
    model: Any,
    calib: ImagesArg = None,
    eval: ImagesArg = None,
    targets: Sequence[str] | None = None,
    *,
    settings: ModelSettings | None = None,
    input_range: str | InputRange | None = None,
    output_range: str | InputRange | None = None,
    output_kind: str | None = None,
    custom_objects: str | os.PathLike[str] | None = None,
    feed: Mapping[str, Any] | None = None,
    thresholds: Thresholds | None = None,
    images: ImageSources | None = None, run: RunSwitches | None = None,
    analysis: bool | None = None, readiness: bool | None = None,
    analyze_all: bool | None = None, fix_verification: bool | None = None,
    qat: bool | None = None,
    baseline: str | os.PathLike[str] | None = None,
    save_baseline: str | os.PathLike[str] | None = None,
    tolerances: Tolerances | None = None,
    plan: PlanRequest | None = None,
    cache: bool | None = None, progress: ProgressFn | None = None,
) -> Report:
    """Convert ``model`` to each target, run it on real images and measure the colour drift.

    ``model`` is a ``.keras``/``.h5`` path or an in-memory ``keras.Model``; ``calib`` and ``eval``
    are folders or arrays (``None``: the bundled image set's halves). ``settings`` (a
    ``ModelSettings``) says how to read the model, or ``input_range`` (default 0:1),
    ``output_range``, ``output_kind``, ``custom_objects`` (your layers' file) and ``feed``
    (what a model's other inputs take: ``{name: folder | number | array}``) one by one;
    ``images`` and ``run`` (``ImageSources``, ``RunSwitches``) likewise replace ``calib``/
    ``eval`` and the switches; ``plan`` searches mixed precision where no fix passes."""
    settings = ModelSettings.given(settings, input_range, output_range, output_kind,
                                   custom_objects, feed)
    sources = ImageSources.given(images, calib, eval)
    switches = RunSwitches.given(run, analysis=analysis, readiness=readiness, qat=qat,
                                 analyze_all=analyze_all, fix_verification=fix_verification,
                                 cache=cache)
    if baseline is not None:
        load_baseline(Path(baseline))  # a bad baseline is a usage error before any work
    return _checked(model, resolve_targets(targets or converters.DEFAULT_TARGETS), settings,
                    sources, switches, thresholds or Thresholds(),
                    _BaselineRequest(baseline, save_baseline, tolerances), plan,
                    progress or (lambda _message: None))


@dataclass(frozen=True)
class _BaselineRequest:
    compare_to: str | os.PathLike[str] | None
    save_to: str | os.PathLike[str] | None
    tolerances: Tolerances | None


def _checked(model: Any, specs: Sequence[TargetSpec], settings: ModelSettings,
             sources: ImageSources, switches: RunSwitches, limits: Thresholds,
             baseline: _BaselineRequest, plan: PlanRequest | None, say: ProgressFn) -> Report:
    charts.keep_in(store := Cache(enabled=switches.cache))
    with work_folder() as workdir, WorkerLanes(workdir) as lanes:
        session = Session.open(model, sources.calib, sources.eval, settings, workdir, store,
                               lanes, prestart=[Lane.TENSORFLOW, Lane.RUNTIME])  # TF loads
        _announce(session, say)
        jobs = {spec.name: session.job(spec) for spec in specs}
        untimed = untimed_jobs(session, jobs) if switches.readiness else []
        visuals: dict[str, TargetVisuals] = {}
        outcomes, results = _convert_and_compare(session, jobs, limits, visuals,
                                                 switches.analysis, say, untimed)
        compared = _baseline(session, specs, jobs, outcomes, results, baseline.compare_to,
                             baseline.save_to, baseline.tolerances, say)
        findings: tuple[Finding, ...] = ()
        fixes: dict[str, FixedArtifact] = {}
        if switches.analysis:
            findings, results, fixes = _analyze_and_advise(
                session, results, outcomes, jobs, limits, switches, plan=plan, say=say)
        if switches.readiness:  # last: its timings share the processor with nothing else
            results = measure_readiness(session, jobs, outcomes, results, limits, say)
    return Report(model=session.info, output=session.output,
                  images=session.images.summary, thresholds=limits,
                  targets=tuple(results), findings=findings, baseline=compared,
                  version=__version__, artifacts=_artifacts(jobs, outcomes), fixes=fixes,
                  visuals=visuals, cache=session.cache)


def _announce(session: Session, say: ProgressFn) -> None:
    for note in session.handle.notes:
        say(note)
    say(f"{len(session.images.evaluation)} evaluation and "
        f"{len(session.images.calibration)} calibration images "
        f"({session.images.summary.source})")


def _artifacts(jobs: dict[str, ConvertJob], outcomes: dict[str, JobResult]) -> dict[str, bytes]:
    return {name: content for name, job in jobs.items()
            if (content := outcomes[job.key].content) is not None}


def _convert_and_compare(session: Session, jobs: dict[str, ConvertJob], limits: Thresholds,
                         visuals: dict[str, TargetVisuals], analysis: bool, say: ProgressFn,
                         also: Sequence[Job] = ()
                         ) -> tuple[dict[str, JobResult], list[TargetResult]]:
    """Convert and run every target in the workers, comparing each as soon as it and the
    float reference are there; ``also`` runs in the same batch (its results join the
    outcomes)."""
    reference = session.references.job(stats=analysis)
    if reference is not None or not all(session.store.is_cached(j) for j in jobs.values()):
        session.lanes.prestart([Lane.TENSORFLOW, Lane.RUNTIME])
        _load_comparison_code()
    comparisons = _Comparisons(session, limits, visuals, say, waits=reference is not None)
    say(f"converting and running {len(jobs)} target(s) in worker processes")
    with comparisons:
        outcomes = session.run_jobs([*([reference] if reference else []), *jobs.values(),
                                     *also], comparisons.arrived)
        session.references.get("evaluation")  # from the workers or the cache; else made here
        if any(converters.TARGETS[name].precision.needs_calibration for name in jobs):
            session.references.get("calibration")
        assessed = comparisons.all(jobs, outcomes)
    return outcomes, [assessed[name] for name in jobs]


class _Comparisons:
    """Compares finished targets on threads (two at once unless the outputs are large)
    while the workers carry on; charts are drawn there too."""

    def __init__(self, session: Session, limits: Thresholds, visuals: dict[str, TargetVisuals],
                 say: ProgressFn, *, waits: bool):
        self.session, self.limits, self.visuals, self.say = session, limits, visuals, say
        self.waits = waits  # on a reference still being computed by a worker
        pixels = len(session.images.evaluation) * int(
            np.prod(session.images.evaluation.pixels.shape[1:3]))
        self.pool = ThreadPoolExecutor(max_workers=2 if pixels <= COMPARE_TWO_PIXELS else 1,
                                       thread_name_prefix="qcheck-compare")
        self.waiting: list[JobResult] = []
        self.futures: dict[str, Future[TargetResult]] = {}

    def __enter__(self) -> _Comparisons:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True)

    def arrived(self, outcome: JobResult) -> None:
        if outcome.job.kind is not JobKind.CONVERT:
            return
        self.waiting.append(outcome)
        if not self.waits or self.session.references.ready:
            self._drain()

    def all(self, jobs: dict[str, ConvertJob], outcomes: dict[str, JobResult]
            ) -> dict[str, TargetResult]:
        self._drain()
        for name, job in jobs.items():
            if name not in self.futures:
                self.futures[name] = self.pool.submit(self._compare, converters.TARGETS[name],
                                                      outcomes[job.key])
        return {name: future.result() for name, future in self.futures.items()}

    def _drain(self) -> None:
        while self.waiting:
            done = self.waiting.pop(0)
            spec = converters.TARGETS[done.job.target]
            self.futures[spec.name] = self.pool.submit(self._compare, spec, done)

    def _compare(self, spec: TargetSpec, outcome: JobResult) -> TargetResult:
        result = assess_outputs(spec, outcome, self.session, self.limits, self.visuals)
        charts.predraw(result.metrics.channel_bias, self.visuals.get(spec.name), result.passed,
                       self.limits)
        release_free_memory()
        self.say(f"{spec.name}: {_verdict(result)}")
        return result


def _load_comparison_code() -> None:
    """Import what comparing and drawing will need (scikit-image's lazily loaded colour and
    metrics code, SciPy's filters, matplotlib: half a second of processor time) while the
    workers import TensorFlow, so it is not paid later while every core converts.

    Here, before any comparison thread starts: scikit-image's lazy loader parses its stubs
    with ``ast.parse``, and on CPython 3.11 a parse on one thread while another thread's
    ``np.load`` parses an array header can fail with "SystemError: AST constructor recursion
    depth mismatch" (python/cpython#106905), as one test run here did."""
    import importlib

    from skimage import color, metrics

    for module in ("matplotlib.figure", "matplotlib.backends.backend_agg", "scipy.ndimage"):
        importlib.import_module(module)

    _ = color.rgb2lab, color.deltaE_ciede2000, metrics.structural_similarity


def _baseline(session: Session, specs: Sequence[TargetSpec], jobs: dict[str, ConvertJob],
              outcomes: dict[str, JobResult], results: list[TargetResult],
              baseline: str | os.PathLike[str] | None,
              save_to: str | os.PathLike[str] | None, tolerances: Tolerances | None,
              say: ProgressFn) -> BaselineResult | None:
    """Compare with a stored baseline and/or store this run as one."""
    if baseline is None and save_to is None:
        return None
    digests = {}
    views = [(name, session.through(name)) for name in session.output_names or (None,)]
    for spec in specs:
        produced = outcomes[jobs[spec.name].key].output_array()
        if produced is not None:
            for name, view in views:
                digests[judged_name(spec.name, name)] = output_digests(view.select(produced),
                                                                       view.output)
    images = list(session.images.evaluation.names)
    compared = compare_baseline(Path(baseline), results, digests, images,
                                tolerances or Tolerances()) if baseline else None
    if save_to is not None:
        save_baseline(Path(save_to), session.info.sha256, images, results, digests)
        say(f"baseline saved to {save_to}")
    return compared


def _analyze_and_advise(session: Session, results: list[TargetResult],
                        outcomes: dict[str, JobResult], jobs: dict[str, ConvertJob],
                        limits: Thresholds, switches: RunSwitches, *,
                        plan: PlanRequest | None, say: ProgressFn
                        ) -> tuple[tuple[Finding, ...], list[TargetResult],
                                   dict[str, FixedArtifact]]:
    analyze_all, verify = switches.analyze_all, switches.fix_verification
    needs_attribution = any(_wants_attribution(r, session, analyze_all) for r in results)
    cached = _cached_findings(session)
    if cached is not None and not needs_attribution:
        return cached, results, {}  # nothing to attribute: the model need not be loaded
    if not is_graph_model(session.handle.model):
        say("the model is subclassed: its layers cannot be walked, so drift is not attributed")
        note = {"note": "a subclassed model: qcheck cannot walk its layers, so it attributes "
                        "no drift to them and suggests no fixes"}
        return (), [replace(r, analysis=note) if _wants_attribution(r, session, analyze_all)
                    else r for r in results], {}
    say("analyzing the model (findings)")
    evidence = gather_evidence(session)
    findings = find(evidence)
    session.cache.put_json(session.keys.findings(), "findings.json",
                           [f.to_dict() for f in findings])
    produced = {r.name: outcome for r in results
                if _wants_attribution(r, session, analyze_all)
                and (outcome := outcomes[jobs[r.name].key]).outputs is not None}
    # A model with several outputs: each target is attributed through the output it fails
    # on (its first failing one; the first output when it passes), named in its analysis.
    groups: dict[str | None, list[str]] = {}
    for result in results:
        if result.name in produced:
            groups.setdefault(result.analysed_output, []).append(result.name)
    for output, names in groups.items():
        view = session.through(output)
        chosen = {name: produced[name] for name in names}
        images = _shared_images(view, list(chosen.values()))
        results = [_attributed(r, evidence, view, chosen[r.name], images, say)
                   if r.name in chosen else r for r in results]
        say("measuring the first-ranked layers on real artifacts"
            + (f" (output {output})" if output else ""))
        arrays = {name: view.select(array) for name, outcome in chosen.items()
                  if (array := outcome.output_array()) is not None}
        results = confirm(view, evidence, results, arrays, images)
    fixes: dict[str, FixedArtifact] = {}
    if any(not r.passed and r.attribution for r in results):
        say("verifying suggested fixes (converting again)" if verify else "suggesting fixes")
        results, fixes = _advised(session, evidence, results, limits, verify, switches.qat)
    if plan is not None:
        results, fixes = attach_plans(session, results, fixes, limits, evidence.input_name,
                                      plan, say)
    return findings, results, fixes


def _advised(session: Session, evidence: ModelEvidence, results: list[TargetResult],
             limits: Thresholds, verify: bool, qat: bool
             ) -> tuple[list[TargetResult], dict[str, FixedArtifact]]:
    """Fixes for every failing target, each measured through the output it was attributed
    through (the check itself for a model with one output)."""
    groups: dict[str | None, list[TargetResult]] = {}
    for result in results:
        groups.setdefault(result.analysed_output, []).append(result)
    advised: dict[str, TargetResult] = {}
    fixes: dict[str, FixedArtifact] = {}
    for output, members in groups.items():
        view = session.through(output)
        done, fixed = advise(view, evidence, members, limits, verify=verify, qat=qat)
        advised.update((r.name, r) for r in done)
        fixes.update(fixed)
    return [advised[r.name] for r in results], fixes


def _shared_images(session: Session, outcomes: list[JobResult]) -> list[int]:
    """The images every attributed target runs on; the outputs mapped to choose them are let
    go before attribution starts."""
    arrays = [session.select(array) for outcome in outcomes
              if (array := outcome.output_array()) is not None]
    return attribution_images(session, arrays) if arrays else []


def _attributed(result: TargetResult, evidence: ModelEvidence, session: Session,
                outcome: JobResult, images: list[int], say: ProgressFn) -> TargetResult:
    """Which Keras layers make this target drift, on the images every attributed target
    shares."""
    outputs = session.select(outcome.output_array())
    assert outputs is not None, "only targets with outputs are attributed"
    said = f" (output {session.output_name})" if session.output_name else ""
    say(f"{result.name}: attributing drift to layers{said}")
    analysis = attribute(evidence, session, result.spec, outputs, images,
                         artifact=outcome.content)
    summary = analysis.summary if session.output_name is None else {
        "output": session.output_name, **analysis.summary}
    return replace(result, attribution=analysis.attribution, analysis=summary)


def _wants_attribution(result: TargetResult, session: Session, analyze_all: bool) -> bool:
    return (analyze_all or not result.passed) and result.error is None


def _cached_findings(session: Session) -> tuple[Finding, ...] | None:
    def parse(path: Path) -> tuple[Finding, ...]:
        return tuple(Finding(str(f["layer"]), Cause(f["cause"]), Severity(f["severity"]),
                             str(f["detail"]))
                     for f in json.loads(path.read_text(encoding="utf-8")))

    return session.cache.read(session.keys.findings(), "findings.json", parse)


def _verdict(result: TargetResult) -> str:
    if result.error:
        return f"error: {result.error}"
    verdict = "pass" if result.passed else "FAIL"
    if result.metrics.delta_e_mean is not None:
        return f"{verdict} (ΔE {result.metrics.delta_e_mean:.2f}, {result.seconds:.1f} s)"
    return f"{verdict} ({result.seconds:.1f} s)"
