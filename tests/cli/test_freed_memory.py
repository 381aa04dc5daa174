"""The ``qcheck`` command's process reuses the memory its comparisons free: chunks of images
on several threads fault far fewer pages in than with the allocator's defaults, and what they
free still goes back between targets."""

from __future__ import annotations

import ctypes.util
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or ctypes.util.find_library("c") is None,
    reason="page-fault counts and mallopt are glibc on Linux")

# What a comparison does per chunk, on two threads: temporaries of 10-20 MB made and freed.
_CHURN = """
import json, resource, sys, threading
import numpy as np
from qcheck.memory import keep_freed_memory, release_free_memory, resident_bytes
if sys.argv[1] == "kept":
    keep_freed_memory()
def chunks():
    images = np.ones((16, 224, 224, 3), np.float32)
    for _ in range(20):
        levels = np.round(images * 255.0)
        steps = np.abs(np.diff(levels, axis=1)).astype(np.float64)
        del levels, steps
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
threads = [threading.Thread(target=chunks) for _ in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
held = resident_bytes()
release_free_memory()
print(json.dumps({"faults": faults, "held": held, "released": held - resident_bytes()}))
"""


def _churn(mode: str) -> dict[str, int]:
    done = subprocess.run([sys.executable, "-c", _CHURN, mode], capture_output=True, text=True,
                          timeout=120, check=True)
    return dict(json.loads(done.stdout))


def test_freed_chunks_are_reused_instead_of_faulted_in_again() -> None:
    defaults, kept = _churn("defaults"), _churn("kept")
    # Measured: 83-101k faults with the defaults, 28-30k kept (the first chunk's pages).
    assert kept["faults"] < defaults["faults"] / 2, (kept, defaults)


def test_what_is_kept_is_still_given_back_between_targets() -> None:
    kept = _churn("kept")
    assert kept["released"] > 16 * 1024**2, kept


def _huge_page_advice(code: str) -> str:
    """NumPy's huge-page advice as ``code`` leaves it (printed as the process exits)."""
    probe = ("import atexit, sys\n"
             "from numpy._core import multiarray\n"
             "atexit.register(lambda: print(multiarray._set_madvise_hugepage(True)))\n" + code)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout.split()[-1]


def test_the_command_keeps_freed_memory_and_the_library_leaves_the_allocator_alone() -> None:
    assert _huge_page_advice("import qcheck.pipeline, qcheck.cli\n") == "True"
    assert _huge_page_advice("sys.argv = ['qcheck', '--version']\n"
                             "from qcheck.cli import run\n"
                             "run()\n") == "False"
