"""A crash or hang in a converter or interpreter becomes that target's error (exit 3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qcheck.cli import main
from qcheck.errors import RuntimeFailure
from qcheck.runners import LiteRTRunner, OnnxRuntimeRunner


def _check(enhancer_path: Path, out: Path, targets: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(["check", str(enhancer_path), "--targets", targets, "--out", str(out),
                 "--no-cache", "--quiet"])
    return code, json.loads((out / "report.json").read_text())


@pytest.mark.parametrize(("mode", "expected"), [("segv", "SIGSEGV"), ("abort", "SIGABRT")])
def test_a_crashing_worker_is_isolated(mode: str, expected: str, enhancer_path: Path,
                                       tmp_path: Path, inject_fault: Any,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    inject_fault(f"tflite-int8:{mode}")
    code, report = _check(enhancer_path, tmp_path / "r", "tflite-int8,tflite-fp16,onnx-int8")
    capsys.readouterr()
    assert code == 3
    by_name = {t["name"]: t for t in report["targets"]}
    assert expected in by_name["tflite-int8"]["error"]
    # The lane restarts for the next TFLite target, and the ONNX lane is untouched.
    assert by_name["tflite-fp16"]["error"] is None and by_name["tflite-fp16"]["passed"]
    assert by_name["onnx-int8"]["error"] is None
    assert (tmp_path / "r" / "junit.xml").exists()


def test_a_hanging_worker_times_out(enhancer_path: Path, tmp_path: Path,
                                    inject_fault: Any, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    inject_fault("onnx-int8:hang")
    monkeypatch.setenv("QCHECK_STEP_TIMEOUT", "20")
    code, report = _check(enhancer_path, tmp_path / "r", "onnx-int8,tflite-fp16")
    capsys.readouterr()
    assert code == 3
    by_name = {t["name"]: t for t in report["targets"]}
    assert "timed out" in by_name["onnx-int8"]["error"]
    assert by_name["tflite-fp16"]["passed"]


def test_a_corrupted_artifact_is_refused_not_fatal(enhancer_path: Path, tmp_path: Path,
                                                   inject_fault: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    inject_fault("tflite-int8:corrupt")
    code, report = _check(enhancer_path, tmp_path / "r", "tflite-int8,onnx-fp16")
    capsys.readouterr()
    assert code == 3
    by_name = {t["name"]: t for t in report["targets"]}
    assert by_name["tflite-int8"]["error"]
    assert by_name["onnx-fp16"]["passed"]


@pytest.mark.parametrize("runner", [LiteRTRunner, OnnxRuntimeRunner])
def test_runtimes_refuse_garbage_with_a_runtime_failure(runner) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeFailure), runner(b"\x00garbage" * 64):
        pass


def test_only_the_tensorflow_lane_loads_tensorflow(enhancer_path: Path, tmp_path: Path) -> None:
    """The runtime lane converts ONNX from the TensorFlow lane's export and runs artifacts of
    both formats without ever importing TensorFlow (what keeps the process tree small): here
    it takes the run of ``tflite-fp16``, which the TensorFlow lane spares it while that lane
    converts ``tflite-int8`` (a plan's many TFLite candidates); the TensorFlow lane runs the
    last TFLite artifact itself."""
    import converters
    from qcheck.cache import Cache
    from qcheck.session import Session

    session = Session.open(str(enhancer_path), None, None, "0:1", tmp_path, Cache(enabled=False))
    jobs = {name: session.job(converters.TARGETS[name])
            for name in ("onnx-int8", "tflite-fp16", "tflite-int8")}
    bases = [job.base for job in jobs.values() if job.base is not None]
    results = {}
    try:
        session.lanes.files = session.images.files(tmp_path)
        for names in (["onnx-int8"], ["tflite-fp16", "tflite-int8"]):
            # The runtime lane has nothing of its own while the TensorFlow lane converts.
            batch: list[Any] = [jobs[name].base for name in names]
            batch += [jobs[name] for name in names]
            results.update({r.job.key: r for r in session.lanes.run(batch)})
    finally:
        session.close()
    assert len(results) == 6
    for base in bases:
        assert base.lane == "tensorflow" and base.spare_lane is None
        assert results[base.key].error is None and results[base.key].tensorflow_loaded
    for job in jobs.values():
        assert results[job.key].error is None and results[job.key].outputs is not None
    assert jobs["onnx-int8"].lane == "runtime"
    assert not results[jobs["onnx-int8"].key].tensorflow_loaded
    assert not results[jobs["tflite-fp16"].key].tensorflow_loaded  # spared to the runtime lane
    assert results[jobs["tflite-int8"].key].tensorflow_loaded  # run where it was made


def test_a_job_whose_base_failed_reports_that_failure(enhancer_path: Path, tmp_path: Path,
                                                      inject_fault: Any,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    inject_fault("onnx-fp32:abort")  # the shared export
    code, report = _check(enhancer_path, tmp_path / "r", "onnx-fp16,onnx-int8,tflite-fp16")
    capsys.readouterr()
    assert code == 3
    by_name = {t["name"]: t for t in report["targets"]}
    for name in ("onnx-fp16", "onnx-int8"):
        assert by_name[name]["error"].startswith(f"{name}: the converter or runtime crashed")
    assert by_name["tflite-fp16"]["passed"]


def test_the_tensorflow_worker_starts_without_matplotlib() -> None:
    """Keras imports pyplot for its image galleries (0.4 s of the TensorFlow worker's start);
    the worker draws nothing, so it loads Keras without it, and can still import it after."""
    import subprocess
    import sys

    probe = ("import sys; from qcheck.quiet import import_tensorflow; "
             "import_tensorflow(plotting=False); import keras; "
             "print('matplotlib' in sys.modules, 'keras' in sys.modules); "
             "import matplotlib.pyplot; print('matplotlib.pyplot' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["False", "True", "True"]


def test_closed_lanes_start_no_worker(enhancer_path: Path, tmp_path: Path) -> None:
    """Closing is final: the thread that runs the lanes may still be dispatching when a check
    is stopped (SIGTERM unwinds it and closes the lanes), and a worker started then would
    outlive the run and write into its removed work folder (the check then exited 3, not
    143)."""
    from qcheck.jobs import ConvertJob, Lane
    from qcheck.workers.scheduler import WorkerLanes

    lanes = WorkerLanes(tmp_path)
    lanes.close()
    lanes.prestart([Lane.TENSORFLOW, Lane.RUNTIME])
    job = ConvertJob(key="k", target="tflite-fp16", model_path=str(enhancer_path),
                     signed_io=False, lane=Lane.TENSORFLOW, spare_lane=Lane.RUNTIME)
    results = list(lanes.run([job]))
    assert [r.error for r in results] == ["tflite-fp16: not run: the workers were stopped"]
    assert all(lane.worker is None for lane in lanes._lanes.values())


def _mapped(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/<pid>/maps")
def test_a_runtime_worker_started_ahead_loads_its_jobs_libraries_before_any_job(
        tmp_path: Path) -> None:
    """A cold check starts its workers before it has jobs for them; the runtime worker, which
    then waits seconds for the TensorFlow lane's export, imports what its jobs will (ONNX,
    ONNX Runtime's quantizer) meanwhile."""
    import time

    from qcheck.jobs import Lane
    from qcheck.workers.scheduler import WorkerLanes

    lanes = WorkerLanes(tmp_path)
    try:
        lanes.prestart([Lane.RUNTIME])
        worker = lanes._lanes[Lane.RUNTIME].worker
        assert worker is not None
        deadline = time.monotonic() + 60
        while "onnx_cpp2py_export" not in _mapped(worker.process.pid) \
                and time.monotonic() < deadline and worker.alive:
            time.sleep(0.05)
        maps = _mapped(worker.process.pid)
    finally:
        lanes.close()
    assert "onnx_cpp2py_export" in maps  # onnx's own library, loaded with no job sent


def test_what_the_runtime_lane_loads_ahead_is_all_it_names_and_never_tensorflow() -> None:
    """The runtime lane never loads TensorFlow (what keeps the process tree small), ahead of
    its jobs included."""
    import subprocess
    import sys

    probe = ("import sys; from qcheck.jobs import Lane; "
             "from qcheck.handlers import _LANE_MODULES, preload; "
             "preload(Lane.RUNTIME); "
             "print(all(m in sys.modules for m in _LANE_MODULES[Lane.RUNTIME]), "
             "[m for m in ('tensorflow', 'keras', 'tf_keras') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=300, check=True)
    assert done.stdout.split("\n")[-2] == "True []", done.stdout


def test_closing_kills_every_worker_and_reaps_it_without_waiting_on_it(tmp_path: Path) -> None:
    """The kernel frees a killed TensorFlow worker's memory in a twentieth of a second; the
    check does not wait for it, but no worker is left behind as a zombie: the process waits
    for them at exit (so their processor time counts as its children's)."""
    import signal

    from qcheck.jobs import Lane
    from qcheck.workers import scheduler

    lanes = scheduler.WorkerLanes(tmp_path)
    lanes.prestart([Lane.TENSORFLOW, Lane.RUNTIME])
    workers = [lane.worker for lane in lanes._lanes.values() if lane.worker is not None]
    lanes.close()
    assert len(workers) == 2
    assert all(lane.worker is None for lane in lanes._lanes.values())
    scheduler._join_reapers()  # what the process runs at exit
    # ``returncode`` is set only when the process is waited for: by the reaping threads here.
    assert [w.process.returncode for w in workers] == [-signal.SIGKILL] * 2
