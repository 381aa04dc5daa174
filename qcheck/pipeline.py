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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import converters
from qcheck.advise import FixedArtifact, advise
from qcheck.analyze.evidence import ModelEvidence
from qcheck.cache import Cache
from qcheck.compare.metrics import FLOAT16_MAX, compare_outputs, out_of_range_fraction
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
    Finding,
    InputRange,
    Metrics,
    Precision,
    TargetResult,
    TargetSpec,
    Thresholds,
)

__all__ = ["assess", "check"]

ProgressFn = Callable[[str], None]


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
    with tempfile.TemporaryDirectory(prefix="qcheck-") as workdir:
        session = Session.open(model, calib, eval, input_range, Path(workdir), Cache(enabled=cache))
        say(f"{len(session.evaluation)} evaluation and {len(session.calibration)} calibration "
            f"images ({session.summary.source})")
        jobs = {spec.name: session.job(spec) for spec in specs}
        with ThreadPoolExecutor(max_workers=1) as background:
            references = background.submit(_references, session, specs)
            say(f"converting and running {len(specs)} target(s) in worker processes")
            outcomes = session.run_jobs(list(jobs.values()))
            references.result()
        results: list[TargetResult] = []
        artifacts: dict[str, bytes] = {}
        visuals: dict[str, TargetVisuals] = {}
        for spec in specs:
            outcome = outcomes[jobs[spec.name].key]
            results.append(assess(spec, outcome, session, limits, visuals))
            if outcome.content is not None:
                artifacts[spec.name] = outcome.content
            say(f"{spec.name}: {_verdict(results[-1])}")
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
        if analysis:
            evidence, findings, results = _analyze(session, results, outcomes, jobs,
                                                   analyze_all, say)
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
        wanted = analyze_all or not result.passed
        if not wanted or result.error or outputs is None or not session.info.is_image_output:
            analyzed.append(result)
            continue
        say(f"{result.name}: attributing drift to layers")
        analysis = attribute(evidence, session, result.spec, outputs)
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
    info = session.info
    try:
        comparison = compare_outputs(
            session.reference("evaluation"), outcome.outputs,
            image_output=info.is_image_output, logits=info.is_logits_output,
            output_range=session.input_range, clipped_fraction=clipped_fraction(spec, session),
        )
    except ValueError as exc:
        return TargetResult(spec=spec, passed=False, error=f"{spec.name}: {exc}",
                            seconds=outcome.seconds)
    if visuals is not None and comparison.colour is not None:
        visuals[spec.name] = capture(comparison.colour, session.evaluation.names)
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
