"""The work of a catalogue: (model, target) jobs, grouped into units a worker runs.

A unit is one ``qcheck.check`` of one model over some of its targets: the model's shared steps
(loading, images, float reference outputs, the float ONNX export) happen once per unit, and
through the content-addressed cache once per model. When workers outnumber models, a model's
targets are split over several units, after a ``prepare`` unit that fills the cache with the
shared steps those units then read.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from qcheck.errors import QcheckError
from qcheck.settings import RunSwitches
from qcheck.zoo.manifest import ZooModel

__all__ = ["Unit", "UnitResult", "plan_units", "run_unit"]

# The target a prepare unit checks: it needs the float reference and the float ONNX export,
# the two steps every other target of the model shares.
PREPARE_TARGET = "onnx-fp32"


@dataclass(frozen=True)
class Unit:
    model: ZooModel
    targets: tuple[str, ...]
    prepare: bool = False  # fills the cache for the model's other units; reports nothing
    after: str | None = None  # the key of the unit that must finish first

    @property
    def key(self) -> str:
        kind = "prepare" if self.prepare else ",".join(self.targets)
        return f"{self.model.name}:{kind}"


@dataclass(frozen=True)
class UnitResult:
    unit: Unit
    report: Any = None  # a qcheck Report (None: the model could not be checked)
    error: str | None = None
    exit_code: int = 0
    seconds: float = 0.0
    worker: dict[str, Any] = field(default_factory=dict)  # where it ran: host, pid


def plan_units(models: list[ZooModel], workers: int) -> list[Unit]:
    """One unit per model; a model's targets split over more units only when there are
    fewer models than workers (each split model gets a prepare unit first)."""
    units: list[Unit] = []
    share = max(1, math.ceil(workers / max(len(models), 1)))
    for model in models:
        targets = model.targets
        pieces = min(share, len(targets)) if len(models) < workers else 1
        if pieces <= 1:
            units.append(Unit(model, targets))
            continue
        prepare = Unit(model, (PREPARE_TARGET,), prepare=True)
        units.append(prepare)
        size = math.ceil(len(targets) / pieces)
        units.extend(Unit(model, targets[i:i + size], after=prepare.key)
                     for i in range(0, len(targets), size))
    return units


def run_unit(unit: Unit, cache: bool = True) -> UnitResult:
    """Check ``unit`` here (a pool process or a Ray task): errors become results; SIGTERM
    ends the process once the check has cleaned up its work folder and worker lanes."""
    with _terminated_exits():
        return _checked(unit, cache)


class _Terminated(BaseException):
    pass


@contextlib.contextmanager
def _terminated_exits() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        # One SIGTERM is enough: another (a pool tearing itself down) must not cut short the
        # cleanup this one starts.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    except _Terminated:  # the check's `with` blocks have unwound: its folders are gone
        os._exit(128 + signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _checked(unit: Unit, cache: bool) -> UnitResult:
    import socket

    from qcheck.pipeline import check

    started = time.perf_counter()
    settings = unit.model.settings
    where = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        report = check(
            unit.model.path, settings.calib, settings.eval, list(unit.targets),
            settings=settings.model_settings(), thresholds=settings.thresholds(),
            run=RunSwitches(analysis=not unit.prepare, readiness=not unit.prepare, cache=cache),
            baseline=None if unit.prepare else unit.model.baseline,
            tolerances=settings.tolerances())
    except QcheckError as exc:
        return UnitResult(unit, error=str(exc), exit_code=int(exc.exit_code),
                          seconds=time.perf_counter() - started, worker=where)
    seconds = time.perf_counter() - started
    if unit.prepare:  # its work is in the cache; its verdict is nobody's
        return UnitResult(unit, seconds=seconds, worker=where)
    return UnitResult(unit, report, exit_code=int(report.exit_code), seconds=seconds,
                      worker=where)

