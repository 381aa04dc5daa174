"""``qcheck check`` starts its TensorFlow worker first thing, before it imports the rest of
qcheck: a check that converts takes that worker over (it waits for its work folder), one
answered from the cache kills it at once, and a command that ends early leaves none behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sample_models.catalog import SAMPLES

SAMPLE = {sample.name: sample for sample in SAMPLES}


def test_only_a_check_starts_a_worker_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    from qcheck.workers import ahead

    started: list[tuple[str, ...]] = []
    monkeypatch.setattr(ahead, "start", lambda lanes: started.append(tuple(lanes)))
    for argv in ([], ["targets"], ["check", "--help"], ["check", "m.keras", "-h"],
                 ["convert", "m.keras", "tflite-int8"], ["--version"]):
        ahead.start_for_command(argv)
    assert started == []
    ahead.start_for_command(["check", "m.keras", "--quiet"])
    assert started == [("tensorflow",)]


# Runs a check with a TensorFlow worker started ahead, recording what became of it.
_PROBE = """
import json, sys
import qcheck
from qcheck.workers import ahead

calls = []
adopt, discard = ahead.adopt, ahead.discard

def adopting(lane):
    found = adopt(lane)
    calls.append(["adopt", lane, found is not None])
    return found

def discarding():
    calls.append(["discard", sorted(ahead._started)])
    discard()

ahead.adopt, ahead.discard = adopting, discarding
if __name__ == "__main__":
    ahead.start(["tensorflow"])
    process = ahead._started["tensorflow"][0]
    report = qcheck.check(sys.argv[1], targets=["tflite-int8"], analysis=False,
                          readiness=False)
    print(json.dumps([calls, process.wait(timeout=30), report.targets[0].error]))
"""


def test_a_cold_check_takes_over_the_worker_started_ahead_and_a_warm_one_kills_it(
        tmp_path: Path) -> None:
    (tmp_path / "probe.py").write_text(_PROBE)
    env = {**os.environ, "QCHECK_CACHE_DIR": str(tmp_path / "cache")}
    runs = [subprocess.run([sys.executable, str(tmp_path / "probe.py"),
                            str(SAMPLE["healthy"].path)], capture_output=True, text=True,
                           timeout=600, env=env, check=False) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    (cold_calls, cold_end, cold_error), (warm_calls, warm_end, warm_error) = (
        json.loads(run.stdout.strip().splitlines()[-1]) for run in runs)
    # Cold: the TensorFlow lane's worker is the one started ahead (it converted and ran the
    # target in the check's work folder), stopped with the lanes.
    assert ["adopt", "tensorflow", True] in cold_calls
    assert not any(call[0] == "discard" and call[1] for call in cold_calls)
    assert cold_error is None and cold_end == -9
    # Warm: nothing to convert, so the worker is killed as soon as the model is known.
    assert ["discard", ["tensorflow"]] in warm_calls
    assert not any(call[0] == "adopt" and call[2] for call in warm_calls)
    assert warm_error is None and warm_end == -9


def test_a_command_that_stops_early_leaves_no_worker_behind(tmp_path: Path) -> None:
    """A usage error ends the command before any check: its exit kills the worker started
    ahead (else it would load TensorFlow for nothing, orphaned)."""
    import psutil

    pids = tmp_path / "pids"
    script = (
        "import sys\n"
        "from qcheck.workers import ahead\n"
        "spawn = ahead.spawn\n"
        "def recorded(*args, **kwargs):\n"
        "    process, ours = spawn(*args, **kwargs)\n"
        f"    open({str(pids)!r}, 'a').write(f'{{process.pid}}\\n')\n"
        "    return process, ours\n"
        "ahead.spawn = recorded\n"
        f"sys.argv = ['qcheck', 'check', {str(tmp_path / 'missing.keras')!r}]\n"
        "from qcheck.cli import run\n"
        "run()\n")
    # Into a file, not a pipe: an orphaned worker would hold a pipe open, and the run would
    # wait for it to end.
    with (tmp_path / "stderr").open("w") as stderr:
        done = subprocess.run([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                              stderr=stderr, timeout=120, check=False)
    assert done.returncode == 2
    assert (tmp_path / "stderr").read_text().startswith("error: model not found")
    started = [int(line) for line in pids.read_text().split()]
    assert len(started) == 1

    def gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    assert all(gone(pid) for pid in started)
