"""A test-only worker plugin: real failures planted in qcheck's worker processes.

A test puts this folder on ``sys.path`` (the ``inject_fault`` fixture); qcheck starts each
worker with the caller's ``sys.path`` as ``PYTHONPATH``, so the worker's interpreter runs this
file at start-up and wraps the conversion handler. Nothing of it is in ``qcheck/``.

``QCHECK_TEST_FAULT=target:mode``, the modes being real failures of the worker: ``segv`` (a
null-pointer read), ``abort``, ``hang`` (until the step timeout), ``corrupt`` (damaged
artifact bytes for the runtime) and ``nan`` (NaN in one output value of every 97).
"""

from __future__ import annotations

import os

_FAULT = os.environ.get("QCHECK_TEST_FAULT", "")


def _damaged(content: bytes, mode: str) -> bytes:
    if mode == "segv":
        import ctypes

        ctypes.string_at(0)
    elif mode == "abort":
        os.abort()
    elif mode == "hang":
        import time

        while True:
            time.sleep(1)
    elif mode == "corrupt":
        damaged = bytearray(content)
        for index in range(8, len(damaged), 7):
            damaged[index] ^= 0xA5
        return bytes(damaged)
    return content


def _install(victim: str, mode: str) -> None:
    import numpy as np

    from qcheck import handlers
    from qcheck.jobs import JobKind

    convert = handlers._convert
    convert_and_run = handlers.HANDLERS[JobKind.CONVERT]

    def faulty_convert(state, job, spec):  # type: ignore[no-untyped-def]
        content, notes = convert(state, job, spec)
        return (_damaged(content, mode) if job.target == victim else content), notes

    def faulty_run(state, job):  # type: ignore[no-untyped-def]
        result = convert_and_run(state, job)
        if mode == "nan" and job.target == victim and result.outputs is not None:
            values = np.load(result.outputs, mmap_mode="r+")
            values.reshape(-1)[::97] = np.nan
            values.flush()
        return result

    handlers._convert = faulty_convert
    handlers.HANDLERS[JobKind.CONVERT] = faulty_run


if _FAULT and ":" in _FAULT:
    _install(*_FAULT.split(":", 1))
