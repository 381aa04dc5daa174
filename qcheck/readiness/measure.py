"""Release readiness beyond colour, per target: the kernels the phone runs (the drift split into
quantization and kernels), latency, memory and size, delegate and op coverage, and the I/O
contract an app codes against.

Each artifact is timed in the runtime worker once every conversion and comparison is done (so
the timings do not share the processor with a converter) and cached per machine; its untimed
run on the reference kernels goes with the conversions, in the runtime lane's gaps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from qcheck.compare.drift import drift_measure
from qcheck.jobs import ConvertJob, JobResult, KernelsJob
from qcheck.limits import Thresholds
from qcheck.readiness.contract import io_change, io_contract
from qcheck.results import TargetResult
from qcheck.session import Session
from qcheck.types import Format

__all__ = ["io_change", "kernel_split", "measure_readiness", "readiness_gates",
           "target_readiness", "untimed_jobs"]

_OPTIMISED = {Format.TFLITE: "LiteRT with XNNPACK (its default)",
              Format.ONNX: "ONNX Runtime, every graph optimisation (its default)"}
# Kernel drift under this many times its measure's noise floor (ΔE 0.05) counts as no share.
_VISIBLE = 5.0
_REFERENCE = {Format.TFLITE: "LiteRT built-in kernels, no delegate",
              Format.ONNX: "ONNX Runtime, graph optimisation off"}


def untimed_jobs(session: Session, jobs: dict[str, ConvertJob]) -> list[KernelsJob]:
    """The reference-kernel runs, to go in the conversions' batch: they are not timed, so the
    runtime lane runs them in its gaps rather than in the timed tail."""
    return [session.kernels_job(job) for job in jobs.values()]


def measure_readiness(session: Session, jobs: dict[str, ConvertJob],
                      outcomes: dict[str, JobResult], results: list[TargetResult],
                      limits: Thresholds, say: Callable[[str], None]) -> list[TargetResult]:
    """Profile every converted target and add its readiness (and the latency and size gates)
    to its result. ``outcomes`` holds the reference-kernel runs too (``untimed_jobs``)."""
    profiles = {name: session.profile_job(job, outcomes[job.key].notes.get("refused"))
                for name, job in jobs.items() if outcomes[job.key].ok}
    if not profiles:
        return results
    say(f"measuring latency and memory of {len(profiles)} target(s)")
    made = session.run_jobs(list(profiles.values()))
    found = []
    for result in results:
        if result.name not in profiles or result.error is not None:
            found.append(result)
            continue
        outcome = outcomes[jobs[result.name].key]
        kernels = outcomes[session.kernels_job(jobs[result.name]).key]
        readiness = target_readiness(result, outcome, made[profiles[result.name].key],
                                     kernels, session)
        readiness["gate_failures"] = gated = readiness_gates(readiness, limits)
        found.append(replace(result, readiness=readiness, failures=result.failures + tuple(gated),
                             passed=result.passed and not gated))
    return found


def target_readiness(result: TargetResult, outcome: JobResult, profile: JobResult,
                     kernels: JobResult, session: Session) -> dict[str, Any]:
    """The readiness of one artifact: from the cache when this artifact was profiled and read
    before (a warm run reads no artifact and imports no ``onnx`` for its I/O contract)."""
    if not profile.ok or not kernels.ok:
        return {"error": profile.error or kernels.error}
    key = session.keys.readiness(profile.job.key, kernels.job.key, outcome.job.key,
                                 repr(session.output))
    cached = session.cache.get_json(key, "readiness.json")
    if isinstance(cached, dict):
        return cached
    readiness = _readiness(result, outcome, profile, kernels, session)
    session.cache.put_json(key, "readiness.json", readiness)
    return readiness


def _readiness(result: TargetResult, outcome: JobResult, profile: JobResult,
               kernels: JobResult, session: Session) -> dict[str, Any]:
    fmt = result.spec.format
    content = outcome.content or b""
    notes = profile.notes
    refused = outcome.notes.get("refused")
    issues = list(notes.get("issues", []))
    return {
        "kernels": {
            "optimised": _REFERENCE[fmt] + " (XNNPACK refused the artifact)" if refused
            else _OPTIMISED[fmt],
            "reference": _REFERENCE[fmt],
            **kernel_split(session, outcome, kernels),
        },
        "latency_ms": notes["latency_ms"],
        "memory_mb": notes["memory_mb"],
        "size_kb": round(len(content) / 1024, 1),
        "io": io_contract(fmt, content, session.input_range, session.output_specs(),
                          session.images.evaluation.image_input, outcome.notes),
        "coverage": {
            "float_ops": sum(i["kind"] == "float_op" for i in issues),
            "gpu_incompatible_ops": sum(i["kind"] == "gpu" for i in issues) if
            fmt is Format.TFLITE else None,
            "runtime_refused": refused is not None,
        },
        "findings": issues,
    }


def kernel_split(session: Session, outcome: JobResult, kernels: JobResult) -> dict[str, Any]:
    """The drift of the first images on the reference kernels (the quantization's own) and
    between those and the optimised kernels (what fusion and fast kernels add)."""
    reference_kernels = kernels.output_array()
    optimised = outcome.output_array()
    if reference_kernels is None or optimised is None:
        return {}
    if not session.output_names:
        return _split(session, reference_kernels, optimised)
    # Several outputs: each output's split; the target's own figures are the first output's.
    split = {name: _split(session.for_output(name), reference_kernels, optimised)
             for name in session.output_names}
    return {**split[session.output_names[0]], "output": session.output_names[0],
            "outputs": split}


def _split(session: Session, reference_kernels: np.ndarray, optimised: np.ndarray
           ) -> dict[str, Any]:
    count = len(reference_kernels)
    reference_kernels = np.asarray(session.select(reference_kernels))
    optimised = np.asarray(session.select(optimised[:count]))
    floats = np.asarray(session.references.get("evaluation")[:count])
    measure = drift_measure(session.output)
    quantization = measure(floats, reference_kernels).mean
    kernels = measure(reference_kernels, optimised).mean
    visible = kernels >= _VISIBLE * measure.floor
    return {"images": count, "measure": measure.name,
            "quantization": round(quantization, 6), "kernels": round(kernels, 6),
            "kernel_share": round(kernels / (quantization + kernels), 4) if visible else 0.0}


def readiness_gates(readiness: dict[str, Any], limits: Thresholds) -> list[str]:
    """The optional latency and size limits (``--max-latency-ms``, ``--max-size-kb``)."""
    failed = []
    latency = readiness.get("latency_ms", {}).get("1", {}).get("median")
    if limits.max_latency_ms is not None and latency is not None \
            and latency > limits.max_latency_ms:
        failed.append(f"latency (1 thread, median) {latency:.2f} ms > "
                      f"{limits.max_latency_ms:g} ms")
    size = readiness.get("size_kb")
    if limits.max_size_kb is not None and size is not None and size > limits.max_size_kb:
        failed.append(f"size {size:.1f} KB > {limits.max_size_kb:g} KB")
    return failed
