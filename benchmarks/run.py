"""``make bench``: qcheck against the bare library calls, measured in one run on this machine.

For each model (the MobileNetV2-style reference, a MIRNet-style denoiser and a ConvNeXt-Tiny-size
classifier, all built in code) times (a) the bare calls a careful engineer would write for the
four default targets (``bare.py``) and (b) ``qcheck check`` on the same model, images and
targets: cold cache, warm cache, with attribution of every target, and with 256 evaluation
images; and (c) what ``onnx-fp16`` costs against ``tflite-fp16`` (``conversion_cost.py``).
Every run is a fresh process, imports included; peak memory is the whole process tree's
(qcheck's workers too). ``make bench MODELS=mirnet`` runs one model; ``make bench REPEATS=3``
times the bare calls and the cold checks three times each, interleaved, and takes medians.
Prints every ratio with its goal and writes them to ``benchmarks/results/latest.json``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
TARGETS = "tflite-fp16,tflite-int8,onnx-fp16,onnx-int8"
# The runs timed against each other (bare calls, cold checks) are repeated this many times,
# interleaved, and their medians count (``make bench REPEATS=3``): a shared machine drifts by
# seconds between minutes, and interleaving puts both sides of a ratio under the same drift.
REPEATS = max(1, int(os.environ.get("REPEATS") or 1))


def _tree_rss_mb(root: int) -> dict[int, float]:
    """Resident memory of ``root`` and each of its descendants, by process id."""
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
    tree: dict[int, float] = {}
    stack = [root]
    while stack:
        pid = stack.pop()
        tree[pid] = rss.get(pid, 0) / 1024**2
        stack.extend(children.get(pid, []))
    return tree


def measure(command: list[str], env: dict[str, str], allowed: tuple[int, ...] = (0, 1),
            cwd: Path | None = None) -> dict[str, float]:
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, cwd=cwd)
    peak = [0.0, 0.0, 0.0]  # the tree's, the main process's, the largest single process's

    def sample() -> None:
        while process.poll() is None:
            tree = _tree_rss_mb(process.pid)
            peak[0] = max(peak[0], sum(tree.values()))
            peak[1] = max(peak[1], tree.get(process.pid, 0.0))
            peak[2] = max(peak[2], *tree.values())
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = process.communicate()
    sampler.join()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers too: all were reaped
    if process.returncode not in allowed:
        raise SystemExit(f"{command[:3]} failed ({process.returncode}): {err[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "peak_mb": round(peak[0]), "main_process_peak_mb": round(peak[1]),
            "largest_process_peak_mb": round(peak[2]), "exit": process.returncode}


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


GOALS = {"check_cold_vs_bare": 0.5, "check_cold_with_readiness_vs_bare": 0.6,
         "check_warm_vs_bare": 0.05,
         "attribution_first_target_vs_bare": 0.25, "attribution_further_target_vs_bare": 0.1,
         "attribution_measured_one_target_vs_bare": 0.5,
         "onnx_fp16_vs_tflite_fp16_conversion": 1.5, "per_image_256_vs_32": 1.2,
         "readiness_vs_bare": 0.2, "peak_memory_256_mb": 2560}


def _save_model(name: str, path: Path) -> int:
    from benchmarks import realistic_models, reference_model

    if name == "mobilenet":
        return reference_model.save(path)
    return realistic_models.save(name, path)


def _attribution(report: Path) -> list[dict[str, float]]:
    """Each analysed target's attribution seconds, images and simulated configurations, in
    the order qcheck ran them (the first one traces the model's simulation; the others reuse
    it, and the weight measurements)."""
    targets = json.loads(report.read_text())["targets"]
    return [{key: t["analysis"][key] for key in ("seconds", "images", "configurations")}
            for t in targets if t.get("analysis")]


def _measured(report: Path) -> dict[str, float]:
    """The one attributed target's simulation seconds, measured-confirmation seconds and how
    many layers were measured."""
    analysis = json.loads(report.read_text())["targets"][0]["analysis"]
    return {"seconds": analysis["seconds"],
            "measured_seconds": analysis.get("measured_seconds", 0.0),
            "confirmed_layers": analysis.get("confirmed_layers", 0)}


def _median_run(measured: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the repeats (a failed exit code wins)."""
    if len(measured) == 1:
        return measured[0]
    return {key: (max(m[key] for m in measured) if key == "exit"
                  else float(np.median([m[key] for m in measured]))) for key in measured[0]}


def bench_model(name: str, work: Path, images: dict[str, Path]) -> dict[str, Any]:
    python = sys.executable
    model = work / f"{name}.keras"
    layers = _save_model(name, model)
    print(f"\n== {name}: {layers} layers", flush=True)
    qcheck = [python, "-m", "qcheck.cli", "check", str(model), "--calib", str(images["calib"]),
              "--targets", TARGETS, "--quiet"]

    def env(cache: str) -> dict[str, str]:
        return {**os.environ, "QCHECK_CACHE_DIR": str(work / f"{name}-{cache}"),
                "PYTHONPATH": str(ROOT)}

    def timed(label: str, command: list[str], cache: str) -> dict[str, float]:
        # The bare calls are the baseline only if they did all the work.
        return measure(command, env(cache), (0,) if label == "bare" else (0, 1))

    def run(label: str, command: list[str], cache: str) -> dict[str, float]:
        runs[label] = timed(label, command, cache)
        print(f"{label:<11}", runs[label], flush=True)
        return runs[label]

    runs: dict[str, dict[str, float]] = {}
    # The bare calls neither profile nor time anything: readiness is measured on its own.
    fast = ["--eval", str(images["eval32"]), "--no-analysis", "--no-readiness"]
    against = [("bare", [python, str(HERE / "bare.py"), str(model), str(images["calib"]),
                         str(images["eval32"])], "unused"),
               ("cold", [*qcheck, *fast, "--out", str(work / f"{name}-cold")], "cache")]
    if name == "mobilenet":  # readiness on (the default), from an empty cache
        against.append(("cold_readiness", [*qcheck, "--eval", str(images["eval32"]),
                                           "--no-analysis", "--out",
                                           str(work / f"{name}-cold-ready")], "cache-ready"))
    samples: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in against}
    for repeat in range(REPEATS):
        for label, command, cache in against:
            shutil.rmtree(work / f"{name}-{cache}", ignore_errors=True)  # cold every time
            samples[label].append(timed(label, command, cache))
            if REPEATS > 1:
                print(f"{label:<11} #{repeat + 1}", samples[label][-1], flush=True)
    for label, measured_runs in samples.items():
        runs[label] = _median_run(measured_runs)
        print(f"{label:<11}", runs[label], flush=True)
    run("warm", [*qcheck, *fast, "--out", str(work / f"{name}-warm")], "cache")
    latency: dict[str, dict[str, float]] = {}
    if name == "mobilenet":  # readiness with the conversions cached and the profiles not yet
        run("readiness", [*qcheck, "--eval", str(images["eval32"]), "--no-analysis",
                          "--out", str(work / f"{name}-ready")], "cache")
        latency = _latency(work / f"{name}-ready" / "report.json")
    # The two int8 targets attributed: the first traces the simulation, the second reuses it.
    analysed = [*qcheck[:-3], "--targets", "tflite-int8,onnx-int8", "--quiet"]
    run("analysis", [*analysed, "--eval", str(images["eval32"]), "--analyze-all",
                     "--no-fix-verification", "--no-readiness",
                     "--out", str(work / f"{name}-analysis")], "cache")
    attribution = _attribution(work / f"{name}-analysis" / "report.json")
    # One target attributed with its layers measured on real artifacts, from a cache of its
    # own (no per-layer build cached): the simulation, then the measured confirmation.
    run("measured", [*qcheck[:-3], "--targets", "tflite-int8", "--quiet", "--eval",
                     str(images["eval32"]), "--analyze-all", "--no-fix-verification",
                     "--no-readiness", "--out", str(work / f"{name}-measured")], "measured")
    measured = _measured(work / f"{name}-measured" / "report.json")
    run("images256", [*qcheck, "--eval", str(images["eval256"]), "--no-analysis",
                      "--no-readiness", "--out", str(work / f"{name}-256")], "cache256")
    conversion = json.loads(subprocess.run(
        [python, str(HERE / "conversion_cost.py"), str(model)], env=env("unused"), check=True,
        capture_output=True, text=True).stdout.strip().splitlines()[-1])
    print("conversion ", conversion, flush=True)
    ratios = _ratios(runs, attribution, conversion)
    bare = runs["bare"]["seconds"]
    ratios["attribution_simulated_one_target_vs_bare"] = measured["seconds"] / bare
    ratios["attribution_measured_one_target_vs_bare"] = (
        measured["seconds"] + measured["measured_seconds"]) / bare
    return {"layers": layers, "runs": runs, "attribution": attribution,
            "measured_attribution": measured,
            "conversion_seconds": conversion, "latency_ms_median": latency,
            "ratios": ratios,
            "bounds": _bounds(runs, attribution)}


def _ratios(runs: dict[str, dict[str, float]], attribution: list[dict[str, float]],
            conversion: dict[str, float]) -> dict[str, float]:
    bare = runs["bare"]["seconds"]
    seconds = [a["seconds"] for a in attribution]
    ratios = {
        "check_cold_vs_bare": runs["cold"]["seconds"] / bare,
        "check_warm_vs_bare": runs["warm"]["seconds"] / bare,
        "attribution_first_target_vs_bare": (seconds[0] / bare) if seconds else -1,
        "attribution_further_target_vs_bare": (
            float(np.mean(seconds[1:])) / bare if len(seconds) > 1 else -1),
        "onnx_fp16_vs_tflite_fp16_conversion": conversion["onnx-fp16"] / conversion["tflite-fp16"],
        "per_image_256_vs_32": (runs["images256"]["seconds"] / 256)
        / (runs["cold"]["seconds"] / 32),
        "peak_memory_256_mb": runs["images256"]["peak_mb"],
    }
    if "cold_readiness" in runs:
        ratios["check_cold_with_readiness_vs_bare"] = runs["cold_readiness"]["seconds"] / bare
    if "readiness" in runs:
        ratios["readiness_vs_bare"] = (runs["readiness"]["seconds"]
                                       - runs["warm"]["seconds"]) / bare
    return ratios


def _bounds(runs: dict[str, dict[str, float]], attribution: list[dict[str, float]]
            ) -> dict[str, float]:
    """What bounds the ratios, measured in the same runs: the processor time a cold check
    spends (all processes; on this machine's cores it cannot finish sooner than that over
    the core count), what each simulated configuration costs, and the largest process."""
    cores = os.cpu_count() or 1
    bare = runs["bare"]["seconds"]
    bounds = {"bare_cpu_seconds": runs["bare"]["cpu_seconds"],
              "cold_cpu_seconds": runs["cold"]["cpu_seconds"],
              "cold_floor_vs_bare": runs["cold"]["cpu_seconds"] / cores / bare,
              "largest_process_256_mb": runs["images256"]["largest_process_peak_mb"],
              "bare_peak_mb": runs["bare"]["peak_mb"]}
    for index, found in enumerate(attribution[:2]):
        which = "first" if index == 0 else "further"
        bounds[f"attribution_{which}_configurations"] = found["configurations"]
        bounds[f"attribution_{which}_images"] = found["images"]
        bounds[f"attribution_{which}_seconds_per_configuration"] = (
            found["seconds"] / max(found["configurations"], 1))
    return bounds


def _print_table(results: dict[str, dict[str, Any]]) -> None:
    names = list(results)
    print(f"\n{'measure':<38} {'goal':>7} " + " ".join(f"{n:>16}" for n in names))
    # The simulation-only figure, printed beside the measured one it is part of.
    shown = {**{k: v for k, v in GOALS.items()
                if k != "attribution_measured_one_target_vs_bare"},
             "attribution_simulated_one_target_vs_bare": float("inf"),
             "attribution_measured_one_target_vs_bare":
                 GOALS["attribution_measured_one_target_vs_bare"]}
    for measure_name, goal in shown.items():
        cells = []
        for name in names:
            value = results[name]["ratios"].get(measure_name)
            if value is None or value < 0:
                cells.append(f"{'-':>16}")
                continue
            mark = "" if goal == float("inf") else "ok" if value <= goal else "MISSED"
            cells.append(f"{value:9.3f} {mark:>6}")
        shown_goal = f"{'–':>7}" if goal == float("inf") else f"{goal:7.2f}"
        print(f"{measure_name:<38} {shown_goal} " + " ".join(cells))
    print("\nwhat bounds them (same runs)")
    for bound in results[names[0]]["bounds"]:
        cells = [f"{results[n]['bounds'].get(bound, float('nan')):16.3f}" for n in names]
        print(f"{bound:<46} " + " ".join(cells))


def main() -> int:
    chosen = os.environ.get("MODELS", "mobilenet,mirnet,convnext").split(",")
    work = Path(tempfile.mkdtemp(prefix="qcheck-bench-"))
    try:  # models, images, caches and reports: gigabytes, gone unless QCHECK_BENCH_KEEP=1
        images = {"calib": write_images(work / "calib", 0, 32, seed=1),
                  "eval32": write_images(work / "eval32", 1, 32, seed=2),
                  "eval256": write_images(work / "eval256", 1, 256, seed=3)}
        print("32 calibration, 32 evaluation images (256 for the memory run)", flush=True)
        results = {name: bench_model(name, work, images) for name in chosen}
    finally:
        if os.environ.get("QCHECK_BENCH_KEEP") == "1":
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    _print_table(results)
    target = HERE / "results" / "latest.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps({"models": results, "goals": GOALS,
                                  "machine": {"cpus": os.cpu_count()},
                                  "when": time.strftime("%Y-%m-%d %H:%M")}, indent=2) + "\n")
    print(f"\nwritten to {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
