"""Comparison threads parse no Python source: on CPython 3.11 an ``ast.parse`` on one thread
while another thread's ``np.load`` parses an array header can fail with "SystemError: AST
constructor recursion depth mismatch" (python/cpython#106905). scikit-image's lazy loader
parses its stubs when its colour and metrics code is first used, so a cold check loads that
code before any comparison thread starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sample_models.catalog import SAMPLES

_PROBE = """
import ast, sys, threading
parses = []
original = ast.parse

def recording(source, *args, **kwargs):
    text = source if isinstance(source, str) else bytes(source).decode('utf-8', 'replace')
    if not text.lstrip().startswith("{'descr'"):  # not an .npy header
        parses.append(threading.current_thread().name)
    return original(source, *args, **kwargs)

ast.parse = recording
import qcheck

if __name__ == '__main__':
    report = qcheck.check(sys.argv[1], targets=['tflite-fp16'], analysis=False,
                          readiness=False)
    assert report.targets[0].metrics.delta_e_mean is not None
    print(sorted(set(parses)))
"""


def test_a_cold_check_parses_no_source_on_its_comparison_threads(tmp_path: Path) -> None:
    (tmp_path / "probe.py").write_text(_PROBE)
    model = next(s for s in SAMPLES if s.name == "healthy").path
    env = {**os.environ, "QCHECK_CACHE_DIR": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, str(tmp_path / "probe.py"), str(model)],
                         capture_output=True, text=True, timeout=600, env=env, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    threads = run.stdout.strip().splitlines()[-1]
    assert "qcheck-compare" not in threads, threads
    assert "MainThread" in threads  # the probe sees the stub parses, made before comparing
