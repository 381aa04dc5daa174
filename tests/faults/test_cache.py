"""A cache that cannot lie: every entry is checked on read; a damaged or replaced one is
discarded with one warning line and recomputed, never shipped and never fatal."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.faults.conftest import by_name, report, run_process

TARGETS = "tflite-int8,onnx-fp16"
DAMAGES = {
    "truncate": lambda data: data[: len(data) // 2],
    "garbage": lambda data: bytes(b ^ 0x5A for b in data[:64]) + data[64:],
    "empty": lambda data: b"",
}


def _check(model: Path, out: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_process("check", str(model), "--targets", TARGETS, "--out", str(out), *extra,
                       env={"QCHECK_CACHE_DIR": str(cache)})


def _entries(cache: Path, name: str) -> list[Path]:
    return sorted(p for p in cache.rglob(name) if p.is_file())


def _metrics(out: Path) -> dict[str, object]:
    return {name: (t["passed"], t["metrics"]["delta_e_mean"])
            for name, t in by_name(report(out)).items()}


# One damage in `make test`; the others take the same path and run in `make test-all`.
@pytest.mark.parametrize("damage", [pytest.param(d, marks=[] if d == "truncate" else
                                                 [pytest.mark.slow]) for d in sorted(DAMAGES)])
def test_damaged_entries_are_recomputed_with_a_warning(damage: str, enhancer_path: Path,
                                                       tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    images = tmp_path / "images"
    _image_folders(images)
    args = ("--calib", str(images / "calib"), "--eval", str(images / "eval"))
    first = _check(enhancer_path, tmp_path / "r1", cache, *args)
    assert first.returncode == 0, first.stderr
    names = ("artifact", "outputs.npy", "reference.npy", "visuals.npz", "pixels.npy",
             "model.json", "assessment.json", "images.json", "report.html", "images.json")
    damaged = {name: _entries(cache, name) for name in names}
    assert all(damaged.values()), {k: len(v) for k, v in damaged.items()}
    for files in damaged.values():
        for path in files:
            path.write_bytes(DAMAGES[damage](path.read_bytes()))
    second = _check(enhancer_path, tmp_path / "r2", cache, *args)
    assert second.returncode == 0, second.stderr
    assert _metrics(tmp_path / "r2") == _metrics(tmp_path / "r1")
    warnings = [line for line in second.stderr.splitlines() if line.startswith("warning:")]
    for name in names[:-2]:  # a page is looked up by its content: a new run asks for a new one
        assert any(name in line for line in warnings), (name, second.stderr)
    assert (tmp_path / "r2" / "report.html").read_text().rstrip().endswith("</html>")
    third = _check(enhancer_path, tmp_path / "r3", cache, *args)  # repaired: no warnings
    assert third.returncode == 0 and "warning:" not in third.stderr, third.stderr


# Replacing with another valid artifact is the harder case; truncation runs in `make test-all`.
@pytest.mark.parametrize("damage", [pytest.param("truncate", marks=pytest.mark.slow), "replace"])
def test_a_tampered_cached_artifact_is_never_shipped(damage: str, enhancer_path: Path,
                                                    tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _check(enhancer_path, tmp_path / "r1", cache)
    assert first.returncode == 0, first.stderr
    shipped = (tmp_path / "r1" / "artifacts" / "tflite-int8.tflite").read_bytes()
    planted = shipped[:100] if damage == "truncate" else \
        (tmp_path / "r1" / "artifacts" / "onnx-fp16.onnx").read_bytes()
    for path in _entries(cache, "artifact"):
        if path.read_bytes() == shipped:
            path.write_bytes(planted)
    second = _check(enhancer_path, tmp_path / "r2", cache)
    assert second.returncode == 0, second.stderr
    assert "warning:" in second.stderr
    again = (tmp_path / "r2" / "artifacts" / "tflite-int8.tflite").read_bytes()
    assert again != planted and again[:8] == shipped[:8]
    assert _metrics(tmp_path / "r2") == _metrics(tmp_path / "r1")


def test_two_checks_share_one_cache_at_once(enhancer_path: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "qcheck.cli", "check", str(enhancer_path), "--targets",
               TARGETS, "--quiet"]
    env = {**os.environ, "QCHECK_CACHE_DIR": str(cache)}
    runs = [subprocess.Popen([*command, "--out", str(tmp_path / f"r{i}")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    assert _metrics(tmp_path / "r0") == _metrics(tmp_path / "r1")
    third = _check(enhancer_path, tmp_path / "r2", cache)
    assert third.returncode == 0 and "warning:" not in third.stderr, third.stderr


def test_a_full_disk_leaves_no_temporary_files_in_the_cache(tmp_path: Path) -> None:
    """Writes beyond RLIMIT_FSIZE fail (EFBIG) like a full disk: the cache only costs time."""
    script = textwrap.dedent(f"""
        import resource, signal
        import numpy as np
        from qcheck.cache import Cache
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        cache = Cache(root=__import__("pathlib").Path({str(tmp_path / "cache")!r}))
        cache.put_array("k" * 40, "big.npy", np.zeros(1 << 20))
        cache.put_text("k" * 40, "small.txt", "fits")
        assert cache.get_file("k" * 40, "big.npy") is None
        assert cache.get_file("k" * 40, "small.txt") is not None
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    leftovers = [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()
                 and p.name not in ("small.txt", "small.txt.sha256")]
    assert leftovers == []


def test_keys_hash_qcheck_itself_and_every_library_that_changes_a_result(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from qcheck import cache

    named = set(cache.library_versions())
    assert {"pillow", "scipy", "matplotlib", "jinja2", "tf-keras",
            "tensorflow-model-optimization", "tensorflow", "onnxruntime"} <= named
    before = cache.Cache.key(kind="x")
    monkeypatch.setattr(cache, "source_digest", lambda: "changed code")
    assert cache.Cache.key(kind="x") != before


def _image_folders(root: Path) -> None:
    from PIL import Image

    from qcheck.load.bundled import bundled_images

    calib, evaluation = bundled_images((48, 48))
    for half, images in (("calib", calib), ("eval", evaluation)):
        (root / half).mkdir(parents=True)
        for index, pixels in enumerate(images.pixels[:6]):
            Image.fromarray((pixels * 255).astype("uint8")).save(root / half / f"{index}.png")


def test_a_damaged_cached_page_is_never_copied_out(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import converters
    import qcheck
    from qcheck.cache import Cache
    from qcheck.report.core import Report
    from qcheck.report.html import render_html
    from qcheck.results import Metrics, TargetResult
    from qcheck.types import ImageSummary, ModelInfo, TensorInfo

    spec = converters.TARGETS["onnx-fp16"]
    info = ModelInfo("m.keras", "0" * 64, (TensorInfo("image", (None, 8, 8, 3), "float32"),),
                     (TensorInfo("out", (None, 8, 8, 3), "float32"),))
    metrics = Metrics(delta_e_mean=0.1, delta_e_p95=0.2, nonfinite_fraction=0.0)
    page_of = Report(model=info, images=ImageSummary(1, 1, "bundled"),
                     thresholds=qcheck.Thresholds(),
                     targets=(TargetResult(spec=spec, passed=True, metrics=metrics),))
    cache = Cache(root=tmp_path / "cache")
    page = render_html(page_of, cache)
    (stored,) = _entries(tmp_path / "cache", "report.html")
    stored.write_text(page[:200])
    assert render_html(page_of, cache) == page
    assert "report.html" in capsys.readouterr().err
