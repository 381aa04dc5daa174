"""Baselines: store what each target produced, and fail when a later run is worse.

A baseline holds, per target, the metrics and a digest of every evaluation output (rounded to
8-bit levels for images, so float noise between runs does not count as a change). Comparing
against it lists each metric that worsened beyond the tolerance as a regression (exit 1), and
reports outputs that changed while the metrics held as information.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from qcheck.compare.pixels import to_unit_rgb
from qcheck.errors import UsageError
from qcheck.limits import TRACKED, Tolerances
from qcheck.outputs import OutputKind, OutputSpec
from qcheck.report.files import atomic_write
from qcheck.results import BaselineRegression, BaselineResult, Metrics, TargetResult

__all__ = ["BASELINE_SCHEMA", "Tolerances", "compare_baseline", "output_digests",
           "save_baseline"]  # Tolerances: re-exported from qcheck.limits, where limits live

BASELINE_SCHEMA = "qcheck.baseline/1"


def output_digests(outputs: np.ndarray, output: OutputSpec) -> list[str]:
    """A short hash per output, on 8-bit levels for images (classes for class outputs): one
    row at a time, never a copy of every output."""
    digests = []
    for row in outputs:
        rounded: np.ndarray
        if output.kind is OutputKind.IMAGE:
            rounded = np.round(to_unit_rgb(np.asarray(row), output.range) * 255.0).astype(
                np.uint8)
        elif output.kind is OutputKind.CLASSES:
            rounded = np.argmax(np.asarray(row), axis=-1).astype(np.int32)
        else:
            rounded = np.round(np.asarray(row, np.float64), 4)
        digests.append(hashlib.sha256(np.ascontiguousarray(rounded).tobytes()).hexdigest()[:16])
    return digests


def _tracked(metrics: Metrics) -> dict[str, float]:
    values = metrics.to_dict()
    bias = values.get("channel_bias")
    if bias:
        values["max_abs_channel_bias"] = max(abs(v) for v in bias.values())
    return {k: float(values[k]) for k in TRACKED if values.get(k) is not None}


def save_baseline(path: Path, model_sha: str, images: list[str],
                  targets: list[TargetResult], digests: dict[str, list[str]]) -> None:
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except (OSError, ValueError):
            existing = None
        if not isinstance(existing, dict) or existing.get("schema") != BASELINE_SCHEMA:
            raise UsageError(f"--save-baseline {path} exists and is not a qcheck baseline; "
                             "qcheck will not overwrite it")
    document = {
        "schema": BASELINE_SCHEMA,
        "model_sha256": model_sha,
        "images": images,
        "targets": {name: {"metrics": _tracked(metrics), "outputs": digests.get(name, [])}
                    for name, metrics, error in judged(targets) if error is None},
    }
    atomic_write(path, json.dumps(document, indent=2) + "\n")


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"--baseline {path} not found") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"--baseline {path} is not readable JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("schema") != BASELINE_SCHEMA:
        raise UsageError(f"--baseline {path} is not a qcheck baseline "
                         f"(expected schema {BASELINE_SCHEMA})")
    return document


def compare_baseline(path: Path, targets: list[TargetResult], digests: dict[str, list[str]],
                     images: list[str], tolerances: Tolerances) -> BaselineResult:
    document = load_baseline(path)
    regressions: list[BaselineRegression] = []
    notes: list[str] = []
    if document.get("images") != images:
        notes.append("the evaluation images differ from the baseline's; outputs are compared "
                     "only where the image names match")
    stored = document.get("targets", {})
    entries = judged(targets)
    for name, metrics, error in entries:
        before = stored.get(name)
        if before is None:
            notes.append(f"{name}: not in the baseline (new target)")
            continue
        if error is not None:
            regressions.append(BaselineRegression(name, "error", 0.0, 1.0))
            continue
        now = _tracked(metrics)
        for metric, (lower_is_better, _) in TRACKED.items():
            if metric not in now or metric not in before["metrics"]:
                continue
            old, new = float(before["metrics"][metric]), now[metric]
            margin = tolerances.allowed(metric, old)
            worse = new > old + margin if lower_is_better else new < old - margin
            if worse:
                regressions.append(BaselineRegression(name, metric, old, new))
        changed = _changed_outputs(before.get("outputs", []), digests.get(name, []),
                                   document.get("images", []), images)
        if changed and not any(r.target == name for r in regressions):
            notes.append(f"{name}: {changed} evaluation output(s) changed while the "
                         "metrics stayed within tolerance")
    for name in stored:
        if name not in {entry[0] for entry in entries}:
            notes.append(f"{name}: in the baseline but not checked this time")
    return BaselineResult(str(path), tuple(regressions), tuple(notes))


def judged_name(target: str, output: str | None) -> str:
    """How a baseline (and JUnit) names one output of a target with several:
    ``tflite-int8[depth]``."""
    return target if output is None else f"{target}[{output}]"


def judged(targets: list[TargetResult]) -> list[tuple[str, Metrics, str | None]]:
    """What a baseline tracks: each target, or each output of a target with several."""
    entries: list[tuple[str, Metrics, str | None]] = []
    for target in targets:
        if target.outputs and target.error is None:
            entries.extend((judged_name(target.name, o.name), o.metrics, None)
                           for o in target.outputs)
        else:
            entries.append((target.name, target.metrics, target.error))
    return entries


def _changed_outputs(before: list[str], now: list[str], old_images: list[str],
                     images: list[str]) -> int:
    previous = dict(zip(old_images, before, strict=False))
    return sum(1 for name, digest in zip(images, now, strict=False)
               if name in previous and previous[name] != digest)
