"""Models and folders that are not what they claim: regular files only, bounded sizes,
streamed hashing, exact module names; all exit 2 with one line, never a hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.faults.conftest import ROOT, one_line_error, run_cli


def _check(capsys: pytest.CaptureFixture[str], model: str | Path, tmp_path: Path,
           *extra: str) -> tuple[int, str]:
    code, _, err = run_cli(capsys, "check", str(model), "--out", str(tmp_path / "r"),
                           "--targets", "tflite-fp16", *extra)
    return code, err


def test_a_fifo_named_like_a_model_is_refused_not_waited_on(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    fifo = tmp_path / "model.keras"
    os.mkfifo(fifo)
    # A hang would block here for ever: the check must not open it for reading.
    code, err = _check(capsys, fifo, tmp_path)
    assert code == 2
    assert "not a regular file" in one_line_error(err)


def test_a_device_named_like_a_model_is_refused(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    link = tmp_path / "model.keras"
    link.symlink_to("/dev/zero")
    code, err = _check(capsys, link, tmp_path)
    assert code == 2
    assert "not a regular file" in one_line_error(err)


def test_an_empty_sequential_is_refused(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    import keras

    path = tmp_path / "empty.keras"
    keras.Sequential().save(path)
    code, err = _check(capsys, path, tmp_path)
    assert code == 2
    assert "no" in one_line_error(err).lower()


def test_an_empty_in_memory_model_is_refused() -> None:
    import keras

    import qcheck

    with pytest.raises(qcheck.QcheckError):
        qcheck.check(keras.Sequential(), targets=["tflite-fp16"])


def test_a_huge_declared_input_is_bounded(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import keras

    inputs = keras.Input((100_000, 100_000, 3), name="image")
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, name="mix")(inputs))
    path = tmp_path / "huge.keras"
    model.save(path)
    code, err = _check(capsys, path, tmp_path)
    assert code == 2
    line = one_line_error(err)
    assert "100000" in line and "QCHECK_MAX_INPUT_PIXELS" in line


def test_a_keras_archive_of_zeros_is_a_zip_bomb(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bomb.keras"
    block = b"\0" * (16 * 1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", json.dumps({"class_name": "Functional", "config": {}}))
        for index in range(64):
            archive.writestr(f"assets/{index}.bin", block)
    assert path.stat().st_size < 4 * 1024 * 1024
    code, err = _check(capsys, path, tmp_path)
    assert code == 2
    assert "bomb" in one_line_error(err) or "expands" in one_line_error(err)


@pytest.mark.parametrize("module", ["keras_evil_mod", "kerasx.layers", "keras-evil"])
def test_only_keras_s_own_modules(module: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = {"class_name": "Functional", "config": {"layers": [
        {"class_name": "Conv2D", "module": module, "config": {"name": "x"}}]}}
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
    code, err = _check(capsys, path, tmp_path)
    assert code == 2
    assert module in one_line_error(err)


_PEAK_OF_TREE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(done.returncode)
"""


def test_a_huge_file_in_an_image_folder_is_not_read_whole(enhancer_path: Path,
                                                          tmp_path: Path) -> None:
    """Hashing a folder streams image files and skips others by their signature: a sparse
    3 GB 'video' (and a fake .png) cost no memory."""
    from PIL import Image

    images = tmp_path / "eval"
    images.mkdir()
    for index in range(3):
        Image.new("RGB", (40, 40), (60 * index, 90, 200)).save(images / f"{index}.png")
    for name in ("movie.mp4", "huge.png"):
        with (images / name).open("wb") as handle:
            handle.truncate(3 * 1024**3)
    command = [sys.executable, "-m", "qcheck.cli", "check", str(enhancer_path), "--eval",
               str(images), "--targets", "tflite-fp16", "--out", str(tmp_path / "r"),
               "--no-analysis"]
    # Run under a parent of its own, which reports the largest process of this check's tree
    # (the check and its workers): this test process's own children include whatever earlier
    # tests left to be reaped late (a stopped Ray worker, a broken pool's process).
    measured = [sys.executable, "-c", _PEAK_OF_TREE, *command]
    done = subprocess.run(measured, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    peak_kb = int(done.stdout.splitlines()[-1])
    assert peak_kb < 1.5 * 1024**2, peak_kb
    skipped = json.loads((tmp_path / "r" / "report.json").read_text())["images"]["skipped"]
    assert {s["file"] for s in skipped} == {"movie.mp4", "huge.png"}
