"""A bounded, seeded fuzz run: mutated models, artifacts and images never crash or hang qcheck."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import converters
from qcheck.errors import QcheckError
from qcheck.jobs import ConvertJob
from qcheck.load import load_model
from qcheck.load.images import decode_image
from qcheck.workers import WorkerLanes


def _mutations(data: bytes, count: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        mutated = bytearray(data)
        kind = rng.integers(3)
        if kind == 0:  # flip a few bytes
            for index in rng.integers(0, len(mutated), size=rng.integers(1, 8)):
                mutated[index] = int(rng.integers(256))
        elif kind == 1:  # truncate
            mutated = mutated[: int(rng.integers(1, len(mutated)))]
        else:  # splice a random block
            start = int(rng.integers(0, len(mutated)))
            mutated[start : start + 16] = rng.bytes(16)
        cases.append(bytes(mutated))
    return cases


def test_mutated_keras_files_fail_cleanly(enhancer_path: Path, tmp_path: Path) -> None:
    outcomes = {"loaded": 0, "refused": 0}
    for index, data in enumerate(_mutations(enhancer_path.read_bytes(), 150, seed=1)):
        path = tmp_path / f"m{index}.keras"
        path.write_bytes(data)
        try:
            load_model(path)
            outcomes["loaded"] += 1
        except QcheckError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_mutated_images_fail_cleanly(fmt: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    buffer = io.BytesIO()
    Image.fromarray((rng.random((48, 48, 3)) * 255).astype(np.uint8)).save(buffer, fmt)
    decoded = 0
    for index, data in enumerate(_mutations(buffer.getvalue(), 150, seed=3)):
        path = tmp_path / f"i{index}.{fmt.lower()}"
        path.write_bytes(data)
        try:
            pixels = decode_image(path)
        except ValueError:
            continue
        decoded += 1
        assert pixels.dtype == np.float32 and pixels.shape[-1] == 3
        assert np.all(np.isfinite(pixels)) and pixels.min() >= 0 and pixels.max() <= 1
    assert decoded < 150


def test_mutated_tflite_artifacts_never_take_qcheck_down(enhancer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from qcheck.load import ModelFeed, bundled_images
    from qcheck.types import InputRange

    calib, evaluation = bundled_images((32, 32))
    source = converters.ConversionSource(enhancer, (None, 32, 32, 3))
    feed = ModelFeed(calib, InputRange(0, 1))
    artifact = converters.convert(converters.TARGETS["tflite-int8"], source, feed.samples)
    np.save(tmp_path / "calib.npy", calib.pixels)
    np.save(tmp_path / "eval.npy", evaluation.pixels[:4])
    jobs = []
    for index, data in enumerate(_mutations(artifact, 60, seed=4)):
        path = tmp_path / f"a{index}.tflite"
        path.write_bytes(data)
        jobs.append(ConvertJob(key=f"fuzz{index}", target="tflite-int8", model_path="",
                               signed_io=False, lane="runtime", artifact=str(path)))
    with WorkerLanes(tmp_path, step_timeout=30) as lanes:
        lanes.images(tmp_path / "calib.npy", tmp_path / "eval.npy", "0:1")
        results = list(lanes.run(jobs))
    assert len(results) == len(jobs)
    assert all((r.error is None) == (r.outputs is not None) for r in results)
    assert any(r.error for r in results)
