"""An export script that gates on colour fidelity with qcheck's Python API.

Run it from the repository root: ``.venv/bin/python examples/export_script.py``. It checks the
bundled ``healthy`` sample model, stops the export if a target drifts, and otherwise ships the
int8 artifact; when a target fails, it prints what qcheck measured about each suggested fix.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import qcheck

MODEL = Path(__file__).resolve().parent.parent / "sample_models" / "healthy.keras"


def main() -> int:
    report = qcheck.check(MODEL, targets=["tflite-int8", "onnx-int8"],
                          thresholds=qcheck.Thresholds(max_delta_e=1.5))
    out = Path(tempfile.mkdtemp(prefix="export-"))
    report.write(out / "qcheck")
    for target in report.targets:
        metrics = target.metrics
        print(f"{target.name}: ΔE {metrics.delta_e_mean:.2f} (p95 {metrics.delta_e_p95:.2f}), "
              f"{'pass' if target.passed else 'FAIL'}")
        for suggestion in target.suggestions:
            verified = suggestion.verified
            result = (f"ΔE {verified.delta_e_mean:.2f}, {'passes' if verified.passed else 'fails'}"
                      if verified else suggestion.verified_note)
            print(f"  {suggestion.action.value}: {result}")
    if not report.passed:
        print(f"colour drift too large; see {out / 'qcheck' / 'report.html'}")
        return 1
    shipped = qcheck.convert(MODEL, "tflite-int8", out=out / "model_int8.tflite")
    print(f"shipped {shipped} ({shipped.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
