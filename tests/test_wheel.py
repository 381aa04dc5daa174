"""qcheck as a team installs it: ``python -m build`` makes an sdist and a wheel (the wheel built
from the sdist), and the wheel alone, in a fresh virtual environment with no checkout in reach,
checks the sample model it ships on the images it bundles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
                           str(ROOT)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_the_sdist_carries_what_the_package_needs(dist: Path) -> None:
    (sdist,) = dist.glob("qcheck-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {Path(*Path(n).parts[1:]).as_posix() for n in archive.getnames()}
    for needed in ("qcheck/report/templates/report.html.j2", "qcheck/samples/healthy.keras",
                   "qcheck/py.typed", "converters/registry.py", "pyproject.toml"):
        assert needed in names


def test_the_wheel_checks_its_sample_without_a_checkout(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("qcheck-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                                "get_paths()['purelib'])"], capture_output=True, text=True,
                               check=True).stdout.strip())
    # The dependencies are this environment's (installing TensorFlow again would only copy
    # it); qcheck itself comes from the wheel alone: a path line runs no .pth file there, so
    # this checkout's editable install is out of reach.
    (site / "qcheck_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
                   check=True, timeout=300)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    where = subprocess.run([str(python), "-c", "import qcheck, qcheck.samples; "
                            "print(qcheck.__file__); print(qcheck.samples.HEALTHY)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path, env=env)
    module, sample = where.stdout.split()
    assert Path(module).is_relative_to(site) and Path(sample).is_relative_to(site)
    done = subprocess.run([str(venv / "bin" / "qcheck"), "check", sample, "--targets",
                           "tflite-fp16,onnx-int8", "--out", "r"], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["images"]["source"] == "bundled" and report["passed"]
    assert (tmp_path / "r" / "report.html").read_text().rstrip().endswith("</html>")


def test_the_shipped_sample_is_the_repository_sample() -> None:
    shipped = ROOT / "qcheck" / "samples" / "healthy.keras"
    assert shipped.read_bytes() == (ROOT / "sample_models" / "healthy.keras").read_bytes()
