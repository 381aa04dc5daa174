"""Every bad input gets exit code 2 and one line, runs no code, and changes nothing it was given."""

from __future__ import annotations

import hashlib
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qcheck.cli import main

MARKER_NAME = "lambda-ran.txt"


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _run_expecting_2(capsys: pytest.CaptureFixture[str], owned: Path, *argv: str) -> str:
    before = _snapshot(owned)
    code = main(list(argv))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert _snapshot(owned) == before, "qcheck changed a file the user owns"
    return lines[0]


def _lambda_model(marker: Path):  # type: ignore[no-untyped-def]
    import keras

    path = str(marker)
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Lambda(
        lambda x: (open(path, "w").write("ran"), x)[1]  # noqa: SIM115 - the attack itself
    )(inputs)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_code_never_runs(suffix: str, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    owned = tmp_path / "owned"
    owned.mkdir()
    marker = tmp_path / MARKER_NAME
    _lambda_model(marker).save(owned / f"evil{suffix}")
    marker.unlink(missing_ok=True)  # saving traces the layer; only loading matters here
    line = _run_expecting_2(capsys, owned, "check", str(owned / f"evil{suffix}"),
                            "--out", str(tmp_path / "out"))
    assert "Lambda" in line
    assert not marker.exists()


def test_keras_safe_mode_is_a_second_line_of_defence(tmp_path: Path) -> None:
    """Even past qcheck's own config scan, Keras safe mode refuses the lambda."""
    from qcheck.errors import ModelLoadError
    from qcheck.load.model_file import load_keras

    marker = tmp_path / MARKER_NAME
    _lambda_model(marker).save(tmp_path / "evil.keras")
    marker.unlink(missing_ok=True)
    with pytest.raises(ModelLoadError, match="never runs"):
        load_keras(tmp_path / "evil.keras")
    assert not marker.exists()


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) \
        + chunk(b"IEND", b"")


def _two_input_model(path: Path) -> None:
    import keras

    a, b = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    keras.Model([a, b], keras.layers.Add()([a, b])).save(path)


def _two_channel_input_model(path: Path) -> None:
    """Neither RGB nor lightness (1-channel Y models are accepted since #14)."""
    import keras

    inputs = keras.Input((8, 8, 2))
    keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs)).save(path)


def _traversal_archive(path: Path, source: Path) -> None:
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as archive:
        for item in original.infolist():
            archive.writestr(item, original.read(item))
        archive.writestr("../../escape.txt", "outside")


def _symlink_archive(path: Path, source: Path) -> None:
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as archive:
        for item in original.infolist():
            archive.writestr(item, original.read(item))
        link = zipfile.ZipInfo("model.weights.link")
        link.external_attr = (0o120777 << 16)
        archive.writestr(link, "/etc/passwd")


def _external_link_h5(path: Path, enhancer_path: Path) -> None:
    import h5py
    import keras

    model = keras.saving.load_model(enhancer_path, compile=False)
    model.save(path)
    with h5py.File(path, "a") as handle:
        handle["model_weights/leak"] = h5py.ExternalLink("/etc/secret.h5", "/data")


BAD_MODELS = {
    "random bytes named .keras": lambda d, m: (d / "m.keras").write_bytes(
        np.random.default_rng(0).bytes(4096)),
    "empty .keras": lambda d, m: (d / "m.keras").write_bytes(b""),
    "empty .h5": lambda d, m: (d / "m.h5").write_bytes(b""),
    "text named .h5": lambda d, m: (d / "m.h5").write_text("just some notes\n"),
    "h5 content named .keras": lambda d, m: (d / "m.keras").write_bytes(
        b"\x89HDF\r\n\x1a\n" + bytes(100)),
    "unsupported extension": lambda d, m: (d / "m.pb").write_bytes(b"x"),
    "two inputs": lambda d, m: _two_input_model(d / "m.keras"),
    "two-channel input": lambda d, m: _two_channel_input_model(d / "m.keras"),
    "path traversal in archive": lambda d, m: _traversal_archive(d / "m.keras", m),
    "symlink in archive": lambda d, m: _symlink_archive(d / "m.keras", m),
    "h5 external link": lambda d, m: _external_link_h5(d / "m.h5", m),
}


@pytest.mark.parametrize("case", list(BAD_MODELS))
def test_bad_model_files_exit_2(case: str, enhancer_path: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    owned = tmp_path / "owned"
    owned.mkdir()
    BAD_MODELS[case](owned, enhancer_path)
    (model,) = [p for p in owned.iterdir() if p.is_file()]
    _run_expecting_2(capsys, owned, "check", str(model), "--out", str(tmp_path / "out"))


@pytest.mark.parametrize("case", ["folder with no model", "missing path", "remote uri"])
def test_bad_model_paths_exit_2(case: str, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    owned = tmp_path / "owned"
    owned.mkdir()
    (owned / "README.txt").write_text("no model here")
    target = {"folder with no model": str(owned), "missing path": str(owned / "absent.keras"),
              "remote uri": "https://example.invalid/model.keras"}[case]
    _run_expecting_2(capsys, owned, "check", target, "--out", str(tmp_path / "out"))


def _bad_calibration(folder: Path, case: str) -> None:
    if case == "only text files":
        (folder / "notes.txt").write_text("hello")
    elif case == "only truncated or fake images":
        (folder / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
        good = folder / "tmp.png"
        Image.new("RGB", (32, 32), (10, 200, 30)).save(good)
        (folder / "truncated.png").write_bytes(good.read_bytes()[:60])
        good.unlink()
    elif case == "only a decompression bomb":
        (folder / "bomb.png").write_bytes(_png_claiming(40000, 40000))


@pytest.mark.parametrize("case", ["empty", "only text files", "only truncated or fake images",
                                  "only a decompression bomb"])
def test_unusable_calibration_folders_exit_2(case: str, enhancer_path: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    owned = tmp_path / "calib"
    owned.mkdir()
    _bad_calibration(owned, case)
    line = _run_expecting_2(capsys, owned, "check", str(enhancer_path), "--calib", str(owned),
                            "--out", str(tmp_path / "out"))
    assert "no usable images" in line
    if case == "only a decompression bomb":
        assert "40000x40000" in line


def test_awkward_images_are_all_used(enhancer_path: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    import json

    folder = tmp_path / "calib"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((40, 40)) * 65535).astype(np.uint16)).save(folder / "g16.png")
    palette = Image.new("P", (40, 40), 0)
    palette.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    palette.save(folder / "p.png", transparency=0)
    Image.new("CMYK", (40, 40), (0, 200, 200, 10)).save(folder / "c.jpg")
    Image.new("L", (40, 40), 90).save(folder / "l.png")
    Image.new("RGBA", (40, 40), (20, 40, 200, 128)).save(folder / "a.png")
    rotated = Image.fromarray((rng.random((30, 50, 3)) * 255).astype(np.uint8))
    exif = rotated.getexif()
    exif[0x0112] = 8
    rotated.save(folder / "r.jpg", exif=exif.tobytes())
    before = _snapshot(folder)
    code = main(["check", str(enhancer_path), "--calib", str(folder), "--targets", "tflite-int8",
                 "--out", str(tmp_path / "out"), "--quiet"])
    capsys.readouterr()
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code in (0, 1)
    assert report["images"]["calibration"] == 6
    assert report["images"]["skipped"] == []
    assert _snapshot(folder) == before


def test_existing_out_folder_keeps_the_users_files(enhancer_path: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    (out / "artifacts").mkdir()
    (out / "artifacts" / "other.bin").write_bytes(b"also mine")
    main(["check", str(enhancer_path), "--targets", "onnx-fp16", "--out", str(out), "--quiet"])
    capsys.readouterr()
    assert (out / "mine.txt").read_text() == "keep me"
    assert (out / "artifacts" / "other.bin").read_bytes() == b"also mine"
    assert not list(out.rglob("*.tmp"))
