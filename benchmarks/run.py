"""``make bench``: qcheck against the bare library calls, measured in one run on this machine.

Times (a) the bare calls a careful engineer would write for the four default targets
(``bare.py``) and (b) ``qcheck check`` on the same model, images and targets: cold cache, warm
cache, with analysis of failing targets, and with 256 evaluation images. Every run is a fresh
process, imports included; peak memory is the whole process tree's (qcheck's workers too).
Prints the ratios and writes them to ``benchmarks/results/latest.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
TARGETS = "tflite-fp16,tflite-int8,onnx-fp16,onnx-int8"


def _tree_rss_mb(root: int) -> float:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            pid, ppid = int(entry.name), int(fields[1])
            rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total / 1024**2


def measure(command: list[str], env: dict[str, str]) -> dict[str, float]:
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    peak = [0.0, 0.0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], _tree_rss_mb(process.pid))
            peak[1] = max(peak[1], _own_rss_mb(process.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = process.communicate()
    sampler.join()
    seconds = time.perf_counter() - started
    if process.returncode not in (0, 1):
        raise SystemExit(f"{command[:3]} failed ({process.returncode}): {err[-2000:]}")
    return {"seconds": round(seconds, 2), "peak_mb": round(peak[0]),
            "main_process_peak_mb": round(peak[1]), "exit": process.returncode}


def _own_rss_mb(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 1024**2
    except (OSError, IndexError, ValueError):
        return 0.0


def write_images(folder: Path, half: int, count: int, seed: int) -> Path:
    """Random crops of the bundled photographs of one half (so calibration ≠ evaluation)."""
    from PIL import Image

    from qcheck.load.bundled import _sources

    photos = [rgb for name, rgb in _sources()[half] if name.endswith("-full")]
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for index in range(count):
        photo = photos[rng.integers(len(photos))]
        side = int(rng.integers(160, min(photo.shape[:2]) + 1))
        top = int(rng.integers(0, photo.shape[0] - side + 1))
        left = int(rng.integers(0, photo.shape[1] - side + 1))
        crop = photo[top : top + side, left : left + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        Image.fromarray((crop * 255).astype(np.uint8)).save(folder / f"{index:04d}.png")
    return folder


def _latency(report: Path) -> dict[str, dict[str, float]]:
    """Median latency per target and thread count, from a report with readiness."""
    targets = json.loads(report.read_text())["targets"]
    return {t["name"]: {threads: figures["median"] for threads, figures in
                        t["readiness"]["latency_ms"].items()} for t in targets if t["readiness"]}


def main() -> int:
    from benchmarks import reference_model

    work = Path(tempfile.mkdtemp(prefix="qcheck-bench-"))
    model = work / "reference.keras"
    layers = reference_model.save(model)
    calib = write_images(work / "calib", 0, 32, seed=1)
    eval32 = write_images(work / "eval32", 1, 32, seed=2)
    eval256 = write_images(work / "eval256", 1, 256, seed=3)
    python = sys.executable
    qcheck = [python, "-m", "qcheck.cli", "check", str(model), "--calib", str(calib),
              "--targets", TARGETS, "--quiet"]

    def env(cache: str) -> dict[str, str]:
        return {**os.environ, "QCHECK_CACHE_DIR": str(work / cache), "PYTHONPATH": str(ROOT)}

    runs: dict[str, dict[str, float]] = {}
    print(f"reference model: {layers} layers at {reference_model.SIZE}×{reference_model.SIZE}; "
          "32 calibration, 32 evaluation images", flush=True)
    runs["bare"] = measure([python, str(HERE / "bare.py"), str(model), str(calib), str(eval32)],
                           env("unused"))
    print("bare", runs["bare"], flush=True)
    # The bare calls neither profile nor time anything: readiness is measured on its own below.
    runs["cold"] = measure([*qcheck, "--eval", str(eval32), "--out", str(work / "r1"),
                            "--no-analysis", "--no-readiness"], env("cache"))
    print("cold", runs["cold"], flush=True)
    runs["warm"] = measure([*qcheck, "--eval", str(eval32), "--out", str(work / "r2"),
                            "--no-analysis", "--no-readiness"], env("cache"))
    print("warm", runs["warm"], flush=True)
    # Conversions cached, profiles not yet: the difference to ``warm`` is what readiness adds.
    runs["readiness"] = measure([*qcheck, "--eval", str(eval32), "--out", str(work / "r5"),
                                 "--no-analysis"], env("cache"))
    latency = _latency(work / "r5" / "report.json")
    print("readiness", runs["readiness"], latency, flush=True)
    # Tight limits make the two int8 targets fail: their analysis is what this run adds.
    runs["analysis"] = measure([*qcheck, "--eval", str(eval32), "--out", str(work / "r3"),
                                "--max-delta-e", "0.05", "--no-fix-verification",
                                "--no-readiness"], env("cache"))
    report = json.loads((work / "r3" / "report.json").read_text())
    analyzed = [t for t in report["targets"] if t["analysis"]]
    print("analysis", runs["analysis"], f"({len(analyzed)} failing targets)", flush=True)
    runs["images256"] = measure([*qcheck, "--eval", str(eval256), "--out", str(work / "r4"),
                                 "--no-analysis", "--no-readiness"], env("cache256"))
    print("256 images", runs["images256"], flush=True)

    bare = runs["bare"]["seconds"]
    per_target_analysis = (runs["analysis"]["seconds"] - runs["warm"]["seconds"]) / max(
        len(analyzed), 1)
    ratios = {
        "check_cold_vs_bare": runs["cold"]["seconds"] / bare,
        "check_warm_vs_bare": runs["warm"]["seconds"] / bare,
        "analysis_per_failing_target_vs_bare": per_target_analysis / bare,
        "per_image_256_vs_32": (runs["images256"]["seconds"] / 256)
        / (runs["cold"]["seconds"] / 32),
        "readiness_vs_bare": (runs["readiness"]["seconds"] - runs["warm"]["seconds"]) / bare,
        "peak_memory_256_mb": runs["images256"]["peak_mb"],
        "main_process_peak_memory_256_mb": runs["images256"]["main_process_peak_mb"],
    }
    goals = {"check_cold_vs_bare": 1.0, "check_warm_vs_bare": 0.15,
             "analysis_per_failing_target_vs_bare": 0.5, "per_image_256_vs_32": 1.2,
             "readiness_vs_bare": 0.2,
             "peak_memory_256_mb": 2560, "main_process_peak_memory_256_mb": 2560}
    print(f"\n{'measure':<38} {'value':>8} {'goal':>8}")
    for name, value in ratios.items():
        mark = "ok" if value <= goals[name] else "MISSED"
        print(f"{name:<38} {value:8.3f} {goals[name]:8.2f}  {mark}")
    attribution_seconds = [t["analysis"]["seconds"] for t in analyzed]
    results = {"layers": layers, "runs": runs, "ratios": ratios, "goals": goals,
               "latency_ms_median": latency,
               "attribution_seconds": attribution_seconds,
               "machine": {"cpus": os.cpu_count()}, "when": time.strftime("%Y-%m-%d %H:%M")}
    target = HERE / "results" / "latest.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
