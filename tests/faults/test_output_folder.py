"""The output folder is written as a unit: checked before any work, staged beside the old
report and swapped in, so a failure leaves the previous report whole; work folders are
cleaned up on every exit path, SIGTERM included, and after a SIGKILL by the next run."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import qcheck
from tests.faults.conftest import ROOT, folder_state, one_line_error, report, run_cli
from tests.waiting import processes_with, wait_until

TARGETS = "tflite-int8,onnx-fp16"


@pytest.fixture(scope="module")
def previous(enhancer_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished report from an earlier run, and a file of the user's beside it."""
    out = tmp_path_factory.mktemp("previous") / "report"
    assert qcheck.check(str(enhancer_path), targets=TARGETS.split(",")).write(out) == out
    (out / "notes.txt").write_text("the user's own file")
    return out


def _copy(folder: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(folder, to)
    return to


@contextlib.contextmanager
def _file_size_limit(limit: int) -> Iterator[None]:
    """Writes beyond ``limit`` bytes fail (EFBIG), like a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_a_full_disk_leaves_the_previous_report_whole(enhancer_path: Path, previous: Path,
                                                     tmp_path: Path) -> None:
    out = _copy(previous, tmp_path / "out")
    before = folder_state(out)
    fresh = qcheck.check(str(enhancer_path), targets=["tflite-int8"])  # a different report
    with _file_size_limit(20_000), pytest.raises(qcheck.QcheckError):
        fresh.write(out)
    assert folder_state(out) == before
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    fresh.write(out)  # with room again: wholly replaced, the user's file kept
    after = folder_state(out)
    assert after["notes.txt"] == before["notes.txt"]
    assert "artifacts/onnx-fp16.onnx" not in after  # not this run's target
    assert report(out)["targets"][0]["name"] == "tflite-int8"


def test_a_full_disk_on_a_small_tmpfs(enhancer_path: Path, previous: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here (the RLIMIT_FSIZE test covers it)")
    try:
        out = _copy(previous, mount / "out")
        before = folder_state(out)
        (mount / "filler").write_bytes(b"\0" * (600 * 1024 - sum(map(len, before.values()))
                                                - 64 * 1024))
        code, _, err = run_cli(capsys, "check", str(enhancer_path), "--targets", "tflite-int8",
                               "--out", str(out), "--no-analysis")
        assert code == 2
        assert "space" in one_line_error(err)
        assert folder_state(out) == before
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_an_unwritable_out_is_refused_before_any_work(enhancer_path: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ro"
    out.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(out)],
                          capture_output=True).returncode != 0:
            pytest.skip("running as root, and a read-only mount is not permitted here")
    else:
        out.chmod(0o555)
    try:
        code, _, err = run_cli(capsys, "check", str(enhancer_path), "--out", str(out))
        assert code == 2
        assert str(out) in one_line_error(err)
        assert "converting" not in err  # refused before any work
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(out)], check=False)
        out.chmod(0o755)


@pytest.mark.parametrize("name", [b"r\xff\xfe-report", b"x" * 300])
def test_awkward_folder_names(name: bytes, enhancer_path: Path, tmp_path: Path) -> None:
    out = os.path.join(os.fsencode(tmp_path), name)
    done = subprocess.run([sys.executable, "-m", "qcheck.cli", "check", str(enhancer_path),
                           "--targets", "tflite-fp16", "--out", out], capture_output=True,
                          cwd=ROOT, timeout=300)
    err = done.stderr.decode(errors="replace")
    if len(name) > 255:  # longer than a file name can be: a usage error, before any work
        assert done.returncode == 2, err
        assert "converting" not in one_line_error(err)
    else:
        assert done.returncode == 0, err
        assert os.path.exists(os.path.join(out, b"report.json"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_run_leaves_no_work_folder_and_the_next_run_works(
        sig: signal.Signals, enhancer_path: Path, previous: Path, tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    out = _copy(previous, tmp_path / "out")
    before = folder_state(out)
    env = {**os.environ, "TMPDIR": str(temp), "QCHECK_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "qcheck.cli", "check", str(enhancer_path), "--targets",
               TARGETS, "--out", str(out)]
    run = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert run.stderr is not None
    for line in run.stderr:
        if "converting" in line:
            break
    # Killed while its workers are at work: a worker runs with the run's TMPDIR below it.
    wait_until(lambda: [p for p in processes_with(f"TMPDIR={temp}/") if p != str(run.pid)],
               "a worker process of the run")
    run.send_signal(sig)
    _, err = run.communicate(timeout=60)
    assert run.returncode != 0
    if sig == signal.SIGTERM:
        assert run.returncode == 128 + signal.SIGTERM, err
        assert list(temp.glob("qcheck-*")) == []
    assert folder_state(out) == before
    _wait_for_workers_to_go(str(temp))
    again = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert list(temp.glob("qcheck-*")) == []  # the killed run's folder is swept too
    assert folder_state(out)["notes.txt"] == before["notes.txt"]


def _wait_for_workers_to_go(marker: str) -> None:
    """Workers of a killed check exit once their pipe closes."""
    wait_until(lambda: not processes_with(marker), "the worker processes of the killed check "
               "exit")


def test_no_work_folder_is_left_by_a_finished_run(enhancer_path: Path, tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    done = subprocess.run([sys.executable, "-m", "qcheck.cli", "check", str(enhancer_path),
                           "--targets", "tflite-fp16", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "TMPDIR": str(temp)})
    assert done.returncode == 0, done.stderr
    assert list(temp.iterdir()) == []
    assert tempfile.gettempdir() != str(temp)
