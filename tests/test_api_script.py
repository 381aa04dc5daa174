"""The README's API snippet works pasted into a plain script: no ``__main__`` guard, and the
script's own code (training, say) runs once, never again in qcheck's workers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_snippet_runs_as_a_script_without_a_guard(enhancer_path: Path,
                                                             tmp_path: Path) -> None:
    runs = tmp_path / "runs.txt"
    script = tmp_path / "export.py"
    script.write_text(textwrap.dedent(f"""
        import qcheck
        with open({str(runs)!r}, "a") as log:  # stands for the training code above it
            log.write("ran\\n")
        report = qcheck.check({str(enhancer_path)!r}, targets=["tflite-int8", "onnx-int8"])
        report.passed, report.target("tflite-int8").metrics.delta_e_mean
        report.write({str(tmp_path / "out")!r})
        print("passed:", report.passed, [t.error for t in report.targets])
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "passed: True [None, None]" in done.stdout, done.stdout + done.stderr[-3000:]
    assert runs.read_text() == "ran\n"
    assert (tmp_path / "out" / "report.json").exists()
