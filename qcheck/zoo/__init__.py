"""``qcheck zoo``: check a whole model catalogue, locally by default, on Ray when asked.

Catalogue (``qcheck-zoo.toml`` or a folder) → units of (model, target) jobs, each model's
shared steps once (``units.py``) → a local process pool or Ray tasks (``engines.py``) → each
model's report, ``zoo.json``, ``index.html``, ``junit.xml`` and one exit code (``output.py``).
Results are content-addressed in qcheck's cache, so an unchanged model is answered from it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from qcheck.config import FileConfig
from qcheck.errors import ExitCode
from qcheck.zoo.engines import Engine, LocalPool, RayCluster, run_units
from qcheck.zoo.manifest import MANIFEST_NAME, ZooModel, load_catalogue
from qcheck.zoo.output import ModelOutcome, catalogue_exit, combine, write_zoo
from qcheck.zoo.units import Unit, UnitResult, plan_units

__all__ = ["LOCAL_RAY", "MANIFEST_NAME", "ModelOutcome", "ZooModel", "ZooResult", "zoo"]

LOCAL_RAY = "local"  # ``ray=LOCAL_RAY``: start a Ray on this machine for the run


@dataclass(frozen=True)
class ZooResult:
    models: tuple[ModelOutcome, ...]
    units: tuple[UnitResult, ...]
    seconds: float
    engine: str

    @property
    def exit_code(self) -> ExitCode:
        return catalogue_exit(list(self.models))

    @property
    def passed(self) -> bool:
        return self.exit_code == ExitCode.OK

    def model(self, name: str) -> ModelOutcome:
        return next(o for o in self.models if o.model.name == name)


def zoo(catalogue: str | os.PathLike[str], *, out: str | os.PathLike[str] | None = None,
        jobs: int | None = None, ray: str | None = None, cache: bool = True,
        progress: Callable[[str], None] | None = None,
        overrides: FileConfig | None = None) -> ZooResult:
    """Check every model × target of ``catalogue``; with ``out``, write the combined report.

    ``jobs``: local worker processes (default: one per core). ``ray``: a Ray cluster's
    address, or ``"local"`` to start a Ray on this machine for the run. ``overrides``: settings
    that win over every model's own (the command line's flags).
    """
    models = load_catalogue(Path(catalogue))
    if overrides is not None:
        models = [replace(m, settings=overrides.over(m.settings)) for m in models]
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    engine: Engine = (LocalPool(jobs, cache) if ray is None else
                      RayCluster(None if ray == LOCAL_RAY else ray, jobs, cache))
    kind = "local pool" if ray is None else f"Ray ({ray})"
    try:
        units = plan_units(models, engine.workers)
        total = sum(len(m.targets) for m in models)
        say(f"{len(models)} models, {total} jobs, {len(units)} units on {kind} "
            f"({engine.workers} workers)")
        counter = _Progress(total, say)
        results = run_units(units, engine, counter.arrived)
    except BaseException:  # interrupted or terminated: stop the workers, do not wait on them
        engine.close(abort=True)
        raise
    engine.close()
    outcomes = combine(models, results)
    result = ZooResult(tuple(outcomes), tuple(results), time.perf_counter() - started, kind)
    if out is not None:
        write_zoo(Path(out), outcomes, {"seconds": round(result.seconds, 2),
                                        "exit_code": int(result.exit_code),
                                        "engine": {"kind": kind, "workers": engine.workers}})
    return result


class _Progress:
    """Jobs done / running / queued across the catalogue, one line per finished unit."""

    def __init__(self, total: int, say: Callable[[str], None]):
        self.total, self.done, self.say = total, 0, say

    def arrived(self, result: UnitResult, running: list[Unit], queued: list[Unit]) -> None:
        if result.unit.prepare:
            verdict = "shared steps ready" if result.error is None else f"error: {result.error}"
        else:
            self.done += len(result.unit.targets)
            verdict = (f"error: {result.error}" if result.report is None else
                       ", ".join(f"{t.name} {'pass' if t.passed else 'FAIL'}"
                                 for t in result.report.targets))
        self.say(f"[jobs: {self.done}/{self.total} done, {_jobs(running)} running, "
                 f"{_jobs(queued)} queued] {result.unit.model.name}: {verdict} "
                 f"({result.seconds:.1f} s)")


def _jobs(units: list[Unit]) -> int:
    """Model × target jobs in ``units`` (a prepare step is none of them)."""
    return sum(len(u.targets) for u in units if not u.prepare)
