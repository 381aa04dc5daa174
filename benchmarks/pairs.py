"""Interleaved pairs: one change's worth, measured against another checkout in one run.

``make bench`` times one checkout, and on a shared machine single runs drift by seconds between
minutes. This runs a cold ``qcheck check`` from another checkout (BEFORE: a ``git worktree`` of
an older commit, say) and from this one, alternating which goes first, each from an empty
cache, on the bench's models and images; then prints both medians, of wall seconds and of the
processor seconds of all processes::

    git worktree add /tmp/before 39ec1d4
    .venv/bin/python benchmarks/pairs.py /tmp/before --pairs 6 [--readiness] [--model mirnet]

Both run with this checkout's virtual environment; ``--no-analysis`` always, and
``--no-readiness`` unless ``--readiness``. Both checkouts' modules are byte-compiled first, as
``make`` does for its own, so a pair compares the code and not whether one had bytecode.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.run import TARGETS, _save_model, measure, write_images  # noqa: E402


def _check(checkout: Path, model: Path, images: dict[str, Path], work: Path,
           readiness: bool) -> dict[str, float]:
    cache, out = work / "cache", work / "out"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "QCHECK_CACHE_DIR": str(cache), "PYTHONPATH": str(checkout)}
    command = [sys.executable, "-m", "qcheck.cli", "check", str(model), "--calib",
               str(images["calib"]), "--eval", str(images["eval"]), "--targets", TARGETS,
               "--quiet", "--no-analysis", *([] if readiness else ["--no-readiness"]),
               "--out", str(out)]
    # From the checkout: ``-m`` puts the working folder first on the path, and the workers
    # the check starts inherit it.
    return measure(command, env, cwd=checkout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="the other checkout")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--readiness", action="store_true")
    parser.add_argument("--model", default="mobilenet", choices=("mobilenet", "mirnet"))
    args = parser.parse_args(argv)
    checkouts = {"before": args.before.resolve(), "after": HERE.parent}
    for checkout in checkouts.values():
        subprocess.run([sys.executable, "-m", "compileall", "-q", "qcheck", "converters"],
                       cwd=checkout, check=True, stdout=subprocess.DEVNULL)
    work = Path(tempfile.mkdtemp(prefix="qcheck-pairs-"))
    try:
        images = {"calib": write_images(work / "calib", 0, 32, seed=1),
                  "eval": write_images(work / "eval", 1, 32, seed=2)}
        model = work / f"{args.model}.keras"
        _save_model(args.model, model)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in checkouts}
        for index in range(args.pairs):
            order = list(checkouts) if index % 2 == 0 else list(checkouts)[::-1]
            for name in order:
                runs[name].append(_check(checkouts[name], model, images, work, args.readiness))
                print(f"pair {index + 1} {name:6} {runs[name][-1]['seconds']:6.2f} s "
                      f"{runs[name][-1]['cpu_seconds']:6.2f} processor-s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, measured in runs.items():
        print(f"{name:6} median {statistics.median(m['seconds'] for m in measured):.2f} s, "
              f"{statistics.median(m['cpu_seconds'] for m in measured):.2f} processor-s "
              f"({checkouts[name]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
