"""The sample model that ships inside the package, so an installed qcheck (a wheel, no
checkout) can check something right away::

    qcheck check "$(python -m qcheck.samples)"

It is ``sample_models/healthy.keras`` of the repository (``sample_models/build.py`` writes both
copies; a test keeps them identical).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["HEALTHY"]

HEALTHY = Path(__file__).resolve().parent / "healthy.keras"
