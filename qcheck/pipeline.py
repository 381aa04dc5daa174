"""The check, end to end: load → convert → run → compare → report.

Every target sees the same preprocessed images: one calibration feed drives every converter and
one evaluation feed drives the float model and every runner. Conversions run in worker
processes (one lane per format family, in parallel) while this process computes the float
reference.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

import converters
from qcheck.advise import FixedArtifact, advise
from qcheck.analyze.evidence import ModelEvidence
from qcheck.cache import Cache
from qcheck.compare.metrics import FLOAT16_MAX, compare_outputs, out_of_range_fraction
from qcheck.memory import release_free_memory
from qcheck.report import charts
from qcheck.report.baseline import (
    Tolerances,
    compare_baseline,
    load_baseline,
    output_digests,
)
from qcheck.report.baseline import save_baseline as save
from qcheck.report.core import ARTIFACTS_DIR, Report
from qcheck.report.visuals import TargetVisuals, capture
from qcheck.session import ImagesArg, Outcome, Session
from qcheck.types import (
    ArtifactKind,
    Cause,
    Finding,
    InputRange,
    Metrics,
    Precision,
    Severity,
    TargetResult,
    TargetSpec,
    Thresholds,
)
from qcheck.workers import RUNTIME_LANE, TENSORFLOW_LANE, WorkerLanes

__all__ = ["assess", "check"]

ProgressFn = Callable[[str], None]
# Evaluation pixels up to which two targets are compared at the same time (64 at 224×224).
COMPARE_TWO_PIXELS = 64 * 224 * 224


def check(
    model: Any,
    calib: ImagesArg = None,
    eval: ImagesArg = None,
    targets: Sequence[str] | None = None,
    *,
    input_range: str | InputRange = "0:1",
    thresholds: Thresholds | None = None,
    analysis: bool = True,
    analyze_all: bool = False,
    fix_verification: bool = True,
    qat: bool = False,
    baseline: str | os.PathLike[str] | None = None,
    save_baseline: str | os.PathLike[str] | None = None,
    tolerances: Tolerances | None = None,
    cache: bool = True,
    progress: ProgressFn | None = None,
) -> Report:
    """Convert ``model`` to each target, run it on real images and measure the colour drift.

    ``model`` is a ``.keras``/``.h5`` path or an in-memory ``keras.Model``; ``calib`` and ``eval``
    are folders or arrays (``None``: the bundled image set's halves).
    """
    from qcheck import __version__

    specs = converters.resolve_targets(targets or converters.DEFAULT_TARGETS)
    if baseline is not None:
        load_baseline(Path(baseline))  # a bad baseline is a usage error before any work
    limits = thresholds or Thresholds()
    say = progress or (lambda _message: None)
    with tempfile.TemporaryDirectory(prefix="qcheck-") as workdir, \
            WorkerLanes(Path(workdir)) as lanes:
        # For a model new to the cache, workers load TensorFlow while this process reads images.
        session = Session.open(model, calib, eval, input_range, Path(workdir),
                               Cache(enabled=cache), lanes,
                               prestart=[TENSORFLOW_LANE, RUNTIME_LANE])
        say(f"{len(session.evaluation)} evaluation and {len(session.calibration)} calibration "
            f"images ({session.summary.source})")
        jobs = {spec.name: session.job(spec) for spec in specs}
        by_key = {job.key: name for name, job in jobs.items()}
        reference = session.reference_job(stats=analysis)
        if reference is not None or not all(session.is_cached(job) for job in jobs.values()):
            lanes.prestart([TENSORFLOW_LANE, RUNTIME_LANE])
        visuals: dict[str, TargetVisuals] = {}
        waiting: list[Outcome] = []
        comparing = ThreadPoolExecutor(max_workers=_comparison_threads(session),
                                       thread_name_prefix="qcheck-compare")
        futures: dict[str, Future[TargetResult]] = {}

        def compare(spec: TargetSpec, outcome: Outcome) -> TargetResult:
            result = assess(spec, outcome, session, limits, visuals)
            charts.predraw(result.metrics.channel_bias, visuals.get(spec.name), result.passed,
                           limits)
            release_free_memory()
            say(f"{spec.name}: {_verdict(result)}")
            return result

        def drain() -> None:
            while waiting:
                done = waiting.pop(0)
                spec = converters.TARGETS[by_key[done.job.key]]
                futures[spec.name] = comparing.submit(compare, spec, done)

        def on_result(outcome: Outcome) -> None:
            """Compare each target as soon as it and the float reference are there."""
            waiting.append(outcome)
            if reference is None or session.has_references():
                drain()

        say(f"converting and running {len(specs)} target(s) in worker processes")
        with comparing:
            outcomes = session.run_jobs(([reference] if reference else [])
                                        + list(jobs.values()), on_result)
            _references(session, specs)  # from the workers or the cache; else computed here
            drain()
            for name, job in jobs.items():
                if name not in futures:
                    futures[name] = comparing.submit(compare, converters.TARGETS[name],
                                                     outcomes[job.key])
            assessed = {name: future.result() for name, future in futures.items()}
        results = [assessed[spec.name] for spec in specs]
        artifacts: dict[str, bytes] = {}
        for spec in specs:
            content = outcomes[jobs[spec.name].key].content
            if content is not None:
                artifacts[spec.name] = content
        digests = {}
        for spec in specs:
            produced = outcomes[jobs[spec.name].key].outputs
            if produced is not None:
                digests[spec.name] = output_digests(produced, session.info.is_image_output,
                                                    session.input_range)
        images = list(session.evaluation.names)
        compared = compare_baseline(Path(baseline), results, digests, images,
                                    tolerances or Tolerances()) if baseline else None
        if save_baseline is not None:
            save(Path(save_baseline), session.info.sha256, images, results, digests)
            say(f"baseline saved to {save_baseline}")
        findings: tuple[Finding, ...] = ()
        fixes: dict[str, FixedArtifact] = {}
        needs_attribution = any(_wants_attribution(r, session, analyze_all) for r in results)
        cached_findings = _cached_findings(session) if analysis else None
        if analysis and cached_findings is not None and not needs_attribution:
            findings = cached_findings  # nothing to attribute: the model need not be loaded
        elif analysis:
            evidence, findings, results = _analyze(session, results, outcomes, jobs,
                                                   analyze_all, say)
            _store_findings(session, findings)
            if any(not r.passed and r.attribution for r in results):
                say("verifying suggested fixes (converting again)" if fix_verification
                    else "suggesting fixes")
                results, fixes = advise(session, evidence, results, limits,
                                        verify=fix_verification, qat=qat)
    return Report(
        model=session.info,
        images=session.summary,
        thresholds=limits,
        targets=tuple(results),
        findings=findings,
        baseline=compared,
        version=__version__,
        artifacts=artifacts,
        fixes=fixes,
        visuals=visuals,
        cache=session.cache,
    )


def _analyze(session: Session, results: list[TargetResult], outcomes: dict[str, Outcome],
             jobs: dict[str, Any], analyze_all: bool, say: ProgressFn
             ) -> tuple[ModelEvidence, tuple[Finding, ...], list[TargetResult]]:
    """Findings on the model, then attribution for failing targets (all with ``analyze_all``)."""
    from qcheck.analyze import attribute, find, gather_evidence

    say("analyzing the model (findings)")
    evidence = gather_evidence(session)
    findings = find(evidence)
    analyzed = []
    for result in results:
        outputs = outcomes[jobs[result.name].key].outputs
        if outputs is None or not _wants_attribution(result, session, analyze_all):
            analyzed.append(result)
            continue
        say(f"{result.name}: attributing drift to layers")
        analysis = attribute(evidence, session, result.spec, outputs,
                             artifact=outcomes[jobs[result.name].key].content)
        analyzed.append(replace(result, attribution=analysis.attribution,
                                analysis=analysis.summary))
    return evidence, findings, analyzed


def assess(spec: TargetSpec, outcome: Outcome, session: Session, thresholds: Thresholds,
           visuals: dict[str, TargetVisuals] | None = None) -> TargetResult:
    """Compare one target's outputs with the float reference and give the verdict.

    With ``visuals``, the worst images and the ΔE histogram are kept there for the HTML page.
    """
    started = time.perf_counter()
    if outcome.error is not None or outcome.outputs is None or outcome.content is None:
        return TargetResult(spec=spec, passed=False, error=outcome.error or "no outputs",
                            seconds=outcome.seconds)
    session.reference("evaluation")  # before reading ``info``: it may learn the output shape
    info = session.info
    key = Cache.key(kind="assessment", job=outcome.job.key,
                    reference=session.reference_digest())
    cached = _cached_assessment(session.cache, key, visuals is not None)
    if cached is not None:
        metrics, seen, target_visuals = cached
        if visuals is not None and target_visuals is not None:
            visuals[spec.name] = target_visuals
        failures = tuple(metrics.failures(thresholds))
        return TargetResult(spec=spec, passed=not failures,
                            artifact=f"{ARTIFACTS_DIR}/{spec.name}{spec.suffix}",
                            size_bytes=len(outcome.content),
                            seconds=outcome.seconds + time.perf_counter() - started,
                            metrics=metrics, failures=failures, artifacts_seen=seen)
    try:
        comparison = compare_outputs(
            session.reference("evaluation"), outcome.outputs,
            image_output=info.is_image_output, logits=info.is_logits_output,
            output_range=session.input_range, clipped_fraction=clipped_fraction(spec, session),
            lab_reference=session.reference_lab() if info.is_image_output else None,
        )
    except ValueError as exc:
        return TargetResult(spec=spec, passed=False, error=f"{spec.name}: {exc}",
                            seconds=outcome.seconds)
    captured = None
    if comparison.delta_e is not None:
        captured = capture(comparison.delta_e, session.reference("evaluation"), outcome.outputs,
                           session.evaluation.names, session.input_range)
        if visuals is not None:
            visuals[spec.name] = captured
    _store_assessment(session.cache, key, comparison.metrics, comparison.artifacts_seen,
                      captured)
    failures = tuple(comparison.metrics.failures(thresholds))
    return TargetResult(
        spec=spec,
        passed=not failures,
        artifact=f"{ARTIFACTS_DIR}/{spec.name}{spec.suffix}",
        size_bytes=len(outcome.content),
        seconds=outcome.seconds + time.perf_counter() - started,
        metrics=comparison.metrics,
        failures=failures,
        artifacts_seen=comparison.artifacts_seen,
    )


def _comparison_threads(session: Session) -> int:
    """Two targets are compared at once (numpy releases the GIL) unless the outputs are
    large, where one at a time keeps memory flat."""
    pixels = len(session.evaluation) * int(np.prod(session.evaluation.pixels.shape[1:3]))
    return 2 if pixels <= COMPARE_TWO_PIXELS else 1


def _wants_attribution(result: TargetResult, session: Session, analyze_all: bool) -> bool:
    return (analyze_all or not result.passed) and result.error is None and \
        session.info.is_image_output


def _findings_key(session: Session) -> str:
    return Cache.key(kind="findings", model=session.info.sha256,
                     calibration=session.calibration.digest(),
                     evaluation=session.evaluation.digest(), input_range=str(session.input_range))


def _cached_findings(session: Session) -> tuple[Finding, ...] | None:
    stored = session.cache.get_json(_findings_key(session), "findings.json")
    if stored is None:
        return None
    return tuple(Finding(f["layer"], Cause(f["cause"]), Severity(f["severity"]), f["detail"])
                 for f in stored)


def _store_findings(session: Session, findings: tuple[Finding, ...]) -> None:
    session.cache.put_json(_findings_key(session), "findings.json",
                           [f.to_dict() for f in findings])


def _cached_assessment(cache: Cache, key: str, want_visuals: bool
                       ) -> tuple[Metrics, tuple[ArtifactKind, ...], TargetVisuals | None] | None:
    stored = cache.get_json(key, "assessment.json")
    if stored is None:
        return None
    metrics = Metrics(**stored["metrics"])
    seen = tuple(ArtifactKind(a) for a in stored["artifacts_seen"])
    visuals = None
    if stored.get("visuals"):
        path = cache.get_file(key, "visuals.npz")
        if path is None:
            return None
        visuals = TargetVisuals.load(path, tuple(stored["visuals"]["names"]),
                                     tuple(stored["visuals"]["image_delta_e"]))
    return metrics, seen, visuals


def _store_assessment(cache: Cache, key: str, metrics: Metrics,
                      seen: tuple[ArtifactKind, ...], visuals: TargetVisuals | None) -> None:
    stored: dict[str, Any] = {"metrics": asdict(metrics),
                              "artifacts_seen": [a.value for a in seen], "visuals": None}
    if visuals is not None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "visuals.npz"
            visuals.save(path)
            cache.put_file(key, "visuals.npz", path)
        stored["visuals"] = {"names": list(visuals.names),
                             "image_delta_e": list(visuals.image_delta_e)}
    cache.put_json(key, "assessment.json", stored)


def clipped_fraction(spec: TargetSpec, session: Session) -> float:
    """Share of evaluation outputs beyond what the target can represent.

    Integer targets calibrate their output range on the calibration images (min/max), so an
    evaluation output outside that range is clipped; float16 clips beyond its finite range.
    """
    evaluation = session.reference("evaluation")
    if spec.precision.needs_calibration:
        calibration = session.reference("calibration")
        return out_of_range_fraction(evaluation, float(calibration.min()),
                                     float(calibration.max()))
    if spec.precision is Precision.FP16:
        return out_of_range_fraction(evaluation, -FLOAT16_MAX, FLOAT16_MAX)
    return 0.0


def _references(session: Session, specs: Sequence[TargetSpec]) -> None:
    session.reference("evaluation")
    if any(spec.precision.needs_calibration for spec in specs):
        session.reference("calibration")


def _verdict(result: TargetResult) -> str:
    if result.error:
        return f"error: {result.error}"
    metrics: Metrics = result.metrics
    if metrics.delta_e_mean is not None:
        return (f"{'pass' if result.passed else 'FAIL'} (ΔE {metrics.delta_e_mean:.2f}, "
                f"{result.seconds:.1f} s)")
    return f"{'pass' if result.passed else 'FAIL'} ({result.seconds:.1f} s)"
