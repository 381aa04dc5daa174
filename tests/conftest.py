from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# A private cache per test session (and per xdist worker): the suite never passes on results
# that older code computed, and never leaves entries in the user's cache.
_CACHE = tempfile.mkdtemp(prefix="qcheck-test-cache-")
os.environ["QCHECK_CACHE_DIR"] = _CACHE
# Latency figures are the benchmark's to judge; the suite times each artifact only briefly.
os.environ.setdefault("QCHECK_PROFILE_SECONDS", "0.02")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

from tests import tiny_models  # noqa: E402


@pytest.fixture(scope="session")
def enhancer():  # type: ignore[no-untyped-def]
    from qcheck.quiet import import_tensorflow

    import_tensorflow()
    return tiny_models.build_enhancer()


@pytest.fixture(scope="session")
def enhancer_path(enhancer, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("models") / "enhancer.keras"
    enhancer.save(path)
    return path


@pytest.fixture(scope="session")
def classifier_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from qcheck.quiet import import_tensorflow

    import_tensorflow()
    path = tmp_path_factory.mktemp("models") / "classifier.keras"
    tiny_models.build_classifier().save(path)
    return path


@pytest.fixture
def inject_fault(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """``inject_fault("tflite-int8:segv")``: the workers of this test fail that way (see
    ``tests/fault_plugin``). Results made so go to a cache of their own, never the suite's."""
    def inject(fault: str) -> None:
        monkeypatch.setenv("QCHECK_TEST_FAULT", fault)
        monkeypatch.setenv("QCHECK_CACHE_DIR", str(tmp_path_factory.mktemp("fault-cache")))
        monkeypatch.syspath_prepend(str(Path(__file__).parent / "fault_plugin"))
    return inject
