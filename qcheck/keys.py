"""Every cache key qcheck uses, in one place: what each cached entry depends on.

A key hashes the parts given here plus the versions of every library that can change a result
(``Cache.key``). Adding an input that changes an entry means adding it here, once.
"""

from __future__ import annotations

import functools
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qcheck.cache import Cache
from qcheck.types import InputRange, TargetSpec

__all__ = ["JobKeys"]


class JobKeys:
    """Keys for one model checked on one pair of image sets in one input range."""

    def __init__(self, model_sha: str, calibration_digest: str, evaluation_digest: str,
                 input_range: InputRange, code_digest: str | None = None,
                 input_size: tuple[int, int] | None = None):
        # The user's own code (``--custom-objects``) is part of what any model computes.
        self.code = "" if code_digest is None else f"+{code_digest}"
        self.model_sha = model_sha + self.code
        self.calibration = calibration_digest
        self.evaluation = evaluation_digest
        self.input_range = str(input_range)
        self.signed_io = input_range.low < 0  # integer I/O is int8 then, else uint8
        # A model of any size converted at a chosen one is another artifact.
        self.input_size = input_size

    @staticmethod
    def model_info(model_sha: str) -> str:
        return Cache.key(kind="model-info", model=model_sha)

    @staticmethod
    def image_folder(content_digest: str) -> str:
        return Cache.key(kind="images", content=content_digest)

    @staticmethod
    def html(report_json: str, visuals: dict[str, str]) -> str:
        return Cache.key(kind="html", report=report_json, visuals=visuals)

    def reference(self, half: str) -> str:
        images = self.calibration if half == "calibration" else self.evaluation
        return Cache.key(kind="reference", model=self.model_sha, images=images,
                         input_range=self.input_range)

    def references(self) -> str:
        """Identifies both reference halves (what every comparison is made against)."""
        return Cache.key(calibration=self.reference("calibration"),
                         evaluation=self.reference("evaluation"))

    def artifact(self, spec: TargetSpec, options: dict[str, Any], *, model_sha: str | None = None,
                 run: bool, rows: tuple[int, ...] = ()) -> str:
        """A converted artifact (and, with ``run``, its evaluation outputs: of ``rows`` only,
        when given)."""
        calibrated = spec.precision.needs_calibration
        model = self.model_sha if model_sha is None else model_sha + self.code
        extra = {"rows": list(rows)} if rows else {}  # keys of whole runs are unchanged
        return Cache.key(kind="artifact", model=model, target=spec.name,
                         options=options, signed_io=self.signed_io,
                         input_range=self.input_range, input_size=self.input_size,
                         calibration=self.calibration if calibrated else None,
                         evaluation=self.evaluation if run else None, **extra)

    def qat(self, spec: TargetSpec, training: dict[str, Any]) -> str:
        """The artifact quantization-aware training makes for ``spec`` (``training``: its
        settings)."""
        return Cache.key(kind="qat", model=self.model_sha, target=spec.name,
                         calibration=self.calibration, signed_io=self.signed_io,
                         input_range=self.input_range, **training)

    def qat_run(self, trained: str) -> str:
        return Cache.key(kind="qat-run", artifact=trained, evaluation=self.evaluation)

    def assessment(self, job_key: str, output: Any) -> str:
        """One target's metrics and pictures, against this model's reference, with the output
        read as ``output`` says (its kind and range)."""
        read_as = [str(output.kind), str(output.range)]
        if getattr(output, "name", None) is not None:  # one of several outputs
            read_as.append(str(output.name))
        return Cache.key(kind="assessment", job=job_key, reference=self.references(),
                         output=read_as)

    def profile(self, job_key: str, layers: Sequence[str]) -> str:
        """Latency, memory and op coverage of one run's artifact, measured on this machine
        (``layers``: the paths its ops are named by)."""
        return Cache.key(kind="profile", job=job_key, layers=list(layers), machine=_machine(),
                         budget=os.environ.get("QCHECK_PROFILE_SECONDS"))

    def kernels(self, job_key: str) -> str:
        """One run's artifact on the reference kernels, on this machine's processor."""
        return Cache.key(kind="kernels", job=job_key, machine=_machine())

    def readiness(self, profile_key: str, kernels_key: str, run_key: str, output: str) -> str:
        """An artifact's readiness as reported: its profile, its outputs on both kernel sets
        against these references (the kernel split) and its I/O contract for this input range
        and output."""
        return Cache.key(kind="readiness", profile=profile_key, kernels=kernels_key,
                         run=run_key,
                         references=self.references(), input_range=self.input_range,
                         output=output)

    def findings(self) -> str:
        return Cache.key(kind="findings", model=self.model_sha, calibration=self.calibration,
                         evaluation=self.evaluation, input_range=self.input_range)


@functools.cache
def _machine() -> str:
    """What a latency depends on here: the processor and how many cores qcheck may use."""
    try:
        model = next((line.split(":", 1)[1].strip() for line in
                      Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        model = ""
    return f"{platform.node()}|{platform.machine()}|{model}|{len(os.sched_getaffinity(0))}"
