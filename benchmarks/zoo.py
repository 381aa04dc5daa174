"""``make bench-zoo``: a catalogue of 8 sample models × 4 targets, three ways, in one run.

(a) ``qcheck check`` on each model one after another (what a team does without the zoo),
(b) ``qcheck zoo --jobs 2`` (the local pool), (c) ``qcheck zoo --ray`` (a local Ray started for
the run). Each way starts from its own empty cache, so all three convert everything; every run
is a fresh process, imports included. Prints the times, the ratios against (a) and the measured
cost per model × target job, and writes ``benchmarks/results/zoo.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
TARGETS = ["tflite-fp16", "tflite-int8", "onnx-fp16", "onnx-int8"]


def _catalogue(folder: Path) -> Path:
    from sample_models.catalog import SAMPLES

    lines = [f"[defaults]\ntargets = {json.dumps(TARGETS)}\n"]
    for sample in SAMPLES[:8]:
        shutil.copy(sample.path, folder / sample.path.name)
        lines.append(f'[[model]]\npath = "{sample.path.name}"\n'
                     f'input_range = "{sample.input_range}"\n')
    manifest = folder / "qcheck-zoo.toml"
    manifest.write_text("\n".join(lines))
    return manifest


def _timed(command: list[str], cache: Path) -> float:
    env = {**os.environ, "QCHECK_CACHE_DIR": str(cache)}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> int:
    from sample_models.catalog import SAMPLES

    qcheck = [sys.executable, "-m", "qcheck.cli"]
    with tempfile.TemporaryDirectory(prefix="qcheck-bench-zoo-") as tmp:
        root = Path(tmp)
        manifest = _catalogue(root)
        serial = 0.0
        for sample in SAMPLES[:8]:
            serial += _timed([*qcheck, "check", str(root / sample.path.name), "--targets",
                              ",".join(TARGETS), "--input-range", sample.input_range,
                              "--out", str(root / "serial" / sample.name), "--quiet"],
                             root / "cache-serial")
        pool = _timed([*qcheck, "zoo", str(manifest), "--jobs", "2", "--out",
                       str(root / "pool"), "--quiet"], root / "cache-pool")
        ray = _timed([*qcheck, "zoo", str(manifest), "--ray", "--jobs", "2", "--out",
                      str(root / "ray"), "--quiet"], root / "cache-ray")
        units = json.loads((root / "pool" / "zoo.json").read_text())
    jobs = len(SAMPLES[:8]) * len(TARGETS)
    results = {"models": len(SAMPLES[:8]), "targets": len(TARGETS), "jobs": jobs,
               "cpus": os.cpu_count(), "serial_seconds": round(serial, 1),
               "pool_seconds": round(pool, 1), "ray_seconds": round(ray, 1),
               "pool_vs_serial": round(pool / serial, 3), "ray_vs_serial": round(ray / serial, 3),
               "serial_seconds_per_job": round(serial / jobs, 2),
               "pool_exit_code": units["exit_code"]}
    for name, value in results.items():
        print(f"{name:>24}: {value}")
    out = HERE / "results" / "zoo.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
