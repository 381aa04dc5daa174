"""``qcheck zoo``: a catalogue of four tiny models (two sharing a float graph, one failing,
one bad file) through the local pool and through a real local Ray, with the same answers; a
Ray worker killed mid-run loses no job."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qcheck.cli import main
from qcheck.zoo import ZooResult, zoo
from sample_models.catalog import SAMPLES
from tests.waiting import wait_until

EXPECTED_EXIT = {"enhancer": 0, "enhancer_copy": 0, "trap": 1, "broken": 2}


@pytest.fixture(scope="module")
def catalogue(enhancer_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("zoo")
    shutil.copy(enhancer_path, folder / "enhancer.keras")
    shutil.copy(enhancer_path, folder / "enhancer_copy.keras")  # the same float graph
    trap = next(s for s in SAMPLES if s.name == "per_tensor_trap")
    shutil.copy(trap.path, folder / "trap.keras")
    (folder / "broken.keras").write_bytes(b"PK\x03\x04 not a model")
    (folder / "qcheck-zoo.toml").write_text("""
[defaults]
targets = ["tflite-int8", "onnx-int8"]

[[model]]
path = "enhancer.keras"

[[model]]
path = "enhancer_copy.keras"

[[model]]
path = "trap.keras"
targets = ["tflite-int8-per-tensor"]

[[model]]
path = "broken.keras"
targets = ["tflite-int8"]
""")
    return folder / "qcheck-zoo.toml"


@pytest.fixture(scope="module")
def local_run(catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[ZooResult, Path]:
    out = tmp_path_factory.mktemp("zoo-out")
    return zoo(catalogue, out=out, jobs=2), out


def _command_of(process: Any) -> list[str]:
    """A process's command line, or nothing for one that ended (a zombie not yet reaped, as a
    short-lived child is) between listing the family and reading it."""
    import psutil

    try:
        return list(process.cmdline())
    except psutil.NoSuchProcess:  # ZombieProcess included
        return []


def _kill_one_mid_run(candidates: Callable[[], list[Any]]
                      ) -> tuple[list[int], threading.Thread]:
    """A thread that SIGKILLs the first process ``candidates`` finds once its unit's check is
    under way (it has started its worker lanes); the pid it killed is put in the list."""
    killed: list[int] = []

    def checking() -> Any:
        import psutil

        for process in candidates():
            with contextlib.suppress(psutil.Error):
                if any("qcheck.workers.entry" in " ".join(child.cmdline())
                       for child in process.children(recursive=True)):
                    return process
        return None

    def kill() -> None:
        with contextlib.suppress(AssertionError):
            process = wait_until(checking, "a unit's check starts its worker lanes")
            process.send_signal(signal.SIGKILL)
            killed.append(process.pid)

    killer = threading.Thread(target=kill, daemon=True)
    killer.start()
    return killed, killer


def _verdicts(result: ZooResult) -> dict[tuple[str, str], tuple[bool, float | None]]:
    rows = {}
    for outcome in result.models:
        for row in outcome.rows():
            rows[(row["model"], row["target"])] = (row["passed"], row["delta_e_mean"])
    return rows


def test_local_pool_reports_every_model_and_the_worst_exit(local_run: tuple[ZooResult, Path]
                                                          ) -> None:
    result, out = local_run
    assert {o.model.name: o.exit_code for o in result.models} == EXPECTED_EXIT
    assert int(result.exit_code) == 2  # the worst of its models: the bad file
    broken = result.model("broken")
    assert broken.report is None and broken.error and "broken.keras" in broken.error
    document = json.loads((out / "zoo.json").read_text())
    assert document["schema"] == "qcheck.zoo/1" and document["exit_code"] == 2
    assert len(document["rows"]) == 6  # 2 + 2 + 1 + 1 model × target jobs, each once
    assert (out / "enhancer" / "report.json").exists() and (out / "trap" / "report.html").exists()
    suites = ET.parse(out / "junit.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == list(EXPECTED_EXIT)
    assert "enhancer/report.html" in (out / "index.html").read_text()
    # Two models with the same float graph get the same answers.
    rows = _verdicts(result)
    assert rows[("enhancer", "onnx-int8")] == rows[("enhancer_copy", "onnx-int8")]


# Ray is an optional extra, and starting a local Ray costs half a minute: `make test-all`.
@pytest.mark.slow
def test_ray_gives_the_same_verdicts_and_metrics(catalogue: Path,
                                                 local_run: tuple[ZooResult, Path]) -> None:
    ray = zoo(catalogue, jobs=2, ray="local", cache=False)  # converted again, not cached
    local, _ = local_run
    assert {o.model.name: o.exit_code for o in ray.models} == EXPECTED_EXIT
    for key, (passed, delta_e) in _verdicts(local).items():
        ray_passed, ray_delta_e = _verdicts(ray)[key]
        assert ray_passed == passed
        assert (delta_e is None) == (ray_delta_e is None)
        if delta_e is not None and ray_delta_e is not None:
            assert ray_delta_e == pytest.approx(delta_e, rel=1e-6)


# Ray is an optional extra, and starting a local Ray costs half a minute: `make test-all`.
@pytest.mark.slow
def test_a_ray_worker_killed_mid_run_loses_no_job(catalogue: Path,
                                                  local_run: tuple[ZooResult, Path]) -> None:
    import psutil

    def ray_worker_running_a_unit() -> list[Any]:
        return [process for process in psutil.process_iter(["cmdline", "name"])
                if "ray::run_unit" in " ".join(process.info["cmdline"] or [])
                + (process.info["name"] or "")]

    killed, killer = _kill_one_mid_run(ray_worker_running_a_unit)
    result = zoo(catalogue, jobs=2, ray="local", cache=False)
    killer.join(timeout=5)
    assert killed, "no Ray worker was seen running a unit"
    assert {o.model.name: o.exit_code for o in result.models} == EXPECTED_EXIT
    assert _verdicts(result).keys() == _verdicts(local_run[0]).keys()
    # Every unit answered once, none by the killed worker.
    assert sorted(r.unit.key for r in result.units) == sorted(
        r.unit.key for r in local_run[0].units)
    assert all(r.worker.get("pid") not in killed for r in result.units)


def test_zoo_cli_and_folder_catalogue(enhancer_path: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(enhancer_path, folder / "only.keras")
    assert main(["zoo", str(folder), "--out", str(tmp_path / "out"), "--jobs", "1"]) == 0
    assert "only: pass" in capsys.readouterr().out
    assert main(["zoo", str(tmp_path / "nothing-here")]) == 2
    assert "no such manifest or folder" in capsys.readouterr().err
    assert main(["zoo", str(folder), "--jobs", "0"]) == 2


def test_units_share_each_models_steps(enhancer_path: Path, tmp_path: Path) -> None:
    from qcheck.config import FileConfig
    from qcheck.zoo.manifest import ZooModel
    from qcheck.zoo.units import plan_units

    four = FileConfig(targets=("tflite-fp16", "tflite-int8", "onnx-fp16", "onnx-int8"))
    models = [ZooModel(f"m{i}", str(enhancer_path), four) for i in range(4)]
    assert [(u.model.name, len(u.targets), u.prepare) for u in plan_units(models, 2)] == [
        (f"m{i}", 4, False) for i in range(4)]  # enough models: one unit each
    split = plan_units(models[:1], 2)
    assert [u.prepare for u in split] == [True, False, False]
    assert all(u.after == split[0].key for u in split[1:])
    assert sum((u.targets for u in split[1:]), ()) == four.targets
    # Run split: the model's two units are merged into one report of its four targets.
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(enhancer_path, folder / "solo.keras")
    (folder / "qcheck-zoo.toml").write_text(
        '[[model]]\npath = "solo.keras"\ntargets = ["tflite-fp16", "tflite-int8", '
        '"onnx-fp16", "onnx-int8"]\n')
    result = zoo(folder, jobs=2, out=tmp_path / "out")
    assert [u.unit.prepare for u in result.units] == [True, False, False]
    report = json.loads((tmp_path / "out" / "solo" / "report.json").read_text())
    assert [t["name"] for t in report["targets"]] == list(four.targets)


def test_manifest_baselines_and_errors(enhancer_path: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    import qcheck

    shutil.copy(enhancer_path, tmp_path / "m.keras")
    qcheck.check(tmp_path / "m.keras", targets=["tflite-int8"], analysis=False,
                 readiness=False, save_baseline=tmp_path / "baseline.json")
    manifest = tmp_path / "qcheck-zoo.toml"
    manifest.write_text('[[model]]\npath = "m.keras"\ntargets = ["tflite-int8"]\n'
                        'baseline = "baseline.json"\nmax_delta_e = 1.5\n')
    result = zoo(manifest, jobs=1)
    report = result.model("m").report
    assert report.baseline is not None and report.baseline.regressions == ()
    assert report.thresholds.max_delta_e == 1.5 and result.exit_code == 0
    manifest.write_text('[[model]]\npath = "m.keras"\ntargets = ["tflite-int9"]\n')
    assert main(["zoo", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert "tflite-int9" in err and "tflite-int8" in err and "Traceback" not in err
    manifest.write_text('[[model]]\nname = "no path"\n')
    assert main(["zoo", str(manifest)]) == 2
    assert "\"path\" (the model file) is required" in capsys.readouterr().err
    manifest.write_text('[[model]]\npath = "m.keras"\nname = "../outside"\n')
    assert main(["zoo", str(manifest), "--out", str(tmp_path / "out")]) == 2
    assert "names the model's report folder" in capsys.readouterr().err
    assert not (tmp_path / "outside").exists()


def test_a_local_worker_killed_mid_run_loses_no_job(catalogue: Path,
                                                   local_run: tuple[ZooResult, Path]) -> None:
    """A dead pool process breaks the whole pool: the scheduler starts a new one and runs
    the units that were lost once more."""
    import os

    import psutil

    def pool_process() -> list[Any]:
        return [child for child in psutil.Process(os.getpid()).children(recursive=False)
                if "spawn" in " ".join(_command_of(child))]

    killed, killer = _kill_one_mid_run(pool_process)
    result = zoo(catalogue, jobs=2, cache=False)
    killer.join(timeout=5)
    assert killed, "no pool process was seen"
    assert {o.model.name: o.exit_code for o in result.models} == EXPECTED_EXIT
    assert sorted(r.unit.key for r in result.units) == sorted(
        r.unit.key for r in local_run[0].units)


def test_a_terminated_zoo_stops_its_workers_and_leaves_no_work_folder(catalogue: Path,
                                                                      tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    import psutil

    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "QCHECK_CACHE_DIR": str(tmp_path / "cache")}
    run = subprocess.Popen([sys.executable, "-m", "qcheck.cli", "zoo", str(catalogue),
                            "--jobs", "2", "--out", str(tmp_path / "out")],
                           env=env, stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None
    assert "units on local pool" in run.stdout.readline()

    def converting() -> list[psutil.Process]:  # the units' checks have started their workers
        family = psutil.Process(run.pid).children(recursive=True)
        lanes = [p for p in family if "qcheck.workers.entry" in " ".join(_command_of(p))]
        return family if lanes else []

    family = wait_until(converting, "the pool's checks start their worker lanes")
    run.send_signal(signal.SIGTERM)
    rest, _ = run.communicate(timeout=120)
    assert run.returncode == 128 + signal.SIGTERM
    assert "zoo:" not in rest  # it did not wait for the catalogue to finish
    _, alive = psutil.wait_procs(family, timeout=30)
    assert alive == [], [p.pid for p in alive]
    assert list(temp.glob("qcheck-*")) == []
    assert not (tmp_path / "out" / "zoo.json").exists()
