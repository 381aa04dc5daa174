"""One target's verdict: its outputs compared with the float reference, against the limits.

Used by the check for every target and by the advisor for every re-converted fix, so a fix is
measured exactly as the target was.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from qcheck.cache import Cache
from qcheck.compare.metrics import compare_outputs, out_of_range_fraction
from qcheck.compare.visuals import TargetVisuals, capture
from qcheck.jobs import JobResult
from qcheck.limits import Thresholds
from qcheck.numerics import FLOAT16_MAX
from qcheck.outputs import OutputKind
from qcheck.results import Metrics, OutputResult, TargetResult, output_key
from qcheck.runners.io import output_range
from qcheck.session import Session
from qcheck.types import ARTIFACTS_DIR, ArtifactKind, Precision, TargetSpec

__all__ = ["assess", "assess_outputs", "clipped_fraction", "combined", "output_key"]


def assess(spec: TargetSpec, outcome: JobResult, session: Session, thresholds: Thresholds,
           visuals: dict[str, TargetVisuals] | None = None) -> TargetResult:
    """Compare one target's outputs with the float reference and give the verdict.

    With ``visuals``, the worst images and the ΔE histogram are kept there for the HTML page.
    """
    started = time.perf_counter()
    outputs = session.select(outcome.output_array())
    if outcome.error is not None or outputs is None or outcome.content is None:
        return TargetResult(spec=spec, passed=False, error=outcome.error or "no outputs",
                            seconds=outcome.seconds)
    reference = session.references.get("evaluation")  # may learn the output shape: first
    output = session.output
    key = session.keys.assessment(outcome.job.key, output)
    cached = _cached_assessment(session.cache, key, visuals is not None)
    if cached is not None:
        metrics, seen, target_visuals = cached
    else:
        try:
            comparison = compare_outputs(
                reference, outputs, output,
                clipped_fraction=clipped_fraction(spec, session, outcome.content,
                                                  outcome.notes),
                lab_reference=session.references.lab(output.range)
                if output.kind is OutputKind.IMAGE else None)
        except ValueError as exc:
            return TargetResult(spec=spec, passed=False, error=f"{spec.name}: {exc}",
                                seconds=outcome.seconds)
        metrics, seen, target_visuals = comparison.metrics, comparison.artifacts_seen, None
        if comparison.delta_e is not None:
            target_visuals = capture(comparison.delta_e, reference, outputs,
                                     session.images.evaluation.names, output.range)
        _store_assessment(session.cache, key, metrics, seen, target_visuals)
    if visuals is not None and target_visuals is not None:
        visuals[spec.name] = target_visuals
    failures = tuple(metrics.failures(thresholds))
    return TargetResult(spec=spec, passed=not failures,
                        artifact=f"{ARTIFACTS_DIR}/{spec.name}{spec.suffix}",
                        size_bytes=len(outcome.content),
                        seconds=outcome.seconds + time.perf_counter() - started,
                        metrics=metrics, failures=failures, artifacts_seen=seen)


def assess_outputs(spec: TargetSpec, outcome: JobResult, session: Session,
                   thresholds: Thresholds, visuals: dict[str, TargetVisuals] | None = None
                   ) -> TargetResult:
    """``assess`` for every output of the model: one output as it is; several each judged
    on its own kind, the target passing when all pass (``TargetResult.outputs``)."""
    if not session.output_names:
        return assess(spec, outcome, session, thresholds, visuals)
    judged: list[tuple[str, TargetResult]] = []
    for name in session.output_names:
        view = session.for_output(name)
        own: dict[str, TargetVisuals] | None = {} if visuals is not None else None
        result = assess(spec, outcome, view, thresholds, own)
        if result.error is not None:
            return result
        if visuals is not None and own:
            visuals[output_key(spec.name, name)] = own[spec.name]
        judged.append((name, result))
    return combined(spec, session, judged)


def combined(spec: TargetSpec, session: Session, judged: list[tuple[str, TargetResult]]
             ) -> TargetResult:
    """One verdict from each output's: every output must pass. The target's own metrics are
    those of the first output that fails (else the first output's), its failures every
    output's, each named."""
    outputs = tuple(OutputResult(name, session.for_output(name).output, result.passed,
                                 result.metrics, result.failures, result.artifacts_seen)
                    for name, result in judged)
    deciding = next((r for _n, r in judged if not r.passed), judged[0][1])
    failures = tuple(f"{name}: {failure}" for name, r in judged for failure in r.failures)
    seen = tuple(dict.fromkeys(a for _n, r in judged for a in r.artifacts_seen))
    return replace(deciding, passed=all(r.passed for _n, r in judged), failures=failures,
                   artifacts_seen=seen, outputs=outputs,
                   seconds=max(r.seconds for _n, r in judged))


def clipped_fraction(spec: TargetSpec, session: Session, content: bytes | None = None,
                     notes: dict[str, Any] | None = None) -> float:
    """Share of evaluation outputs beyond what the target can represent.

    An integer artifact stores its output in the range its own calibration gave it (read
    from the artifact, so a fix with other calibration is measured against its own); where
    the artifact cannot be read, the float model's calibrated min/max stand in. Float16 clips
    beyond its finite range.
    """
    evaluation = session.references.get("evaluation")
    if spec.precision.needs_calibration:
        stored = output_range(spec.format, content, session.output_name, notes)
        if stored is None:
            calibration = session.references.get("calibration")
            stored = float(calibration.min()), float(calibration.max())
        return out_of_range_fraction(evaluation, *stored)
    if spec.precision is Precision.FP16:
        return out_of_range_fraction(evaluation, -FLOAT16_MAX, FLOAT16_MAX)
    return 0.0


def _cached_assessment(cache: Cache, key: str, want_visuals: bool
                       ) -> tuple[Metrics, tuple[ArtifactKind, ...], TargetVisuals | None] | None:
    def parse(path: Path) -> tuple[Metrics, tuple[ArtifactKind, ...], dict[str, Any] | None]:
        stored = json.loads(path.read_text(encoding="utf-8"))
        return (Metrics(**stored["metrics"]),
                tuple(ArtifactKind(a) for a in stored["artifacts_seen"]), stored.get("visuals"))

    found = cache.read(key, "assessment.json", parse)
    # The pictures are checked too (a damaged file named) before either is trusted.
    pictures = cache.read(key, "visuals.npz", lambda path: TargetVisuals.load(path, (), ()))
    if found is None:
        return None
    metrics, seen, described = found
    if not described:
        return metrics, seen, None
    if pictures is None:
        return None
    return metrics, seen, replace(pictures, names=tuple(described["names"]),
                                  image_delta_e=tuple(described["image_delta_e"]))


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
