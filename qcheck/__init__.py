"""qcheck: post-training quantization and deployment checks for Keras image models.

The library API comes first; the ``qcheck`` command is a thin layer over it::

    import qcheck
    report = qcheck.check("model.keras", calib="images/", targets=["tflite-int8", "onnx-int8"])
    report.passed, report.target("tflite-int8").metrics.delta_e_mean, report.write("out/")
    path = qcheck.convert("model.keras", "tflite-int8", calib="images/", out="model_int8.tflite")
    planned = qcheck.plan("model.keras", "tflite-int8", out="plan/")  # mixed precision
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# ONNX Runtime (1.29 and later) sends usage telemetry on import and leaves a session file in
# the temporary folder; a release check phones no one home (set it to 0 to allow it).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qcheck.api import convert, fix, plan
    from qcheck.errors import QcheckError
    from qcheck.limits import Thresholds
    from qcheck.pipeline import check
    from qcheck.report.core import Report
    from qcheck.version import __version__

__all__ = ["QcheckError", "Report", "Thresholds", "__version__", "check", "convert", "fix",
           "plan"]

# Where each public name lives. They load on first use, so a worker process (which imports
# only the conversion and runtime code it needs) does not load the whole library first.
_PUBLIC = {"convert": "qcheck.api", "fix": "qcheck.api", "plan": "qcheck.api",
           "QcheckError": "qcheck.errors", "Thresholds": "qcheck.limits",
           "check": "qcheck.pipeline", "Report": "qcheck.report.core",
           "__version__": "qcheck.version"}


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'qcheck' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
