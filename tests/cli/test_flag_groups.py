"""Every command is assembled from the same flag groups, and each flag does what it says there."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from qcheck.cli import main
from qcheck.cli.parser import build_parser

MODEL = {"--input-range", "--output-range", "--output-kind", "--custom-objects"}
IMAGES = {"--calib", "--eval"}
LIMITS = {"--max-delta-e", "--max-delta-e-p95", "--max-channel-bias", "--min-class-agreement",
          "--max-latency-ms", "--max-size-kb"}
OUTPUT = {"--out", "-o", "--output"}
RUN = {"--no-cache", "--quiet"}

# What each command must take: the contract gives fix, plan, convert and zoo the model, image
# and limit flags of check.
EXPECTED = {
    "check": MODEL | IMAGES | LIMITS | OUTPUT | RUN,
    "fix": MODEL | IMAGES | LIMITS | OUTPUT | RUN,
    "plan": MODEL | IMAGES | LIMITS | OUTPUT | RUN,
    "convert": MODEL | IMAGES | LIMITS | OUTPUT | RUN,
    "zoo": MODEL | IMAGES | LIMITS | OUTPUT | RUN,
    "explore": set(),
    "targets": set(),
}


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_command_takes_its_flag_groups() -> None:
    commands = _subcommands()
    assert set(commands) == set(EXPECTED)
    for name, parser in commands.items():
        flags = {o for a in parser._actions for o in a.option_strings}
        assert EXPECTED[name] <= flags, (name, sorted(EXPECTED[name] - flags))


def test_one_flag_means_one_thing_in_every_command() -> None:
    """The same flag has the same destination, type, default and metavar wherever it appears
    (the output path's default is each command's own folder)."""
    seen: dict[str, tuple[object, ...]] = {}
    for name, parser in _subcommands().items():
        for action in parser._actions:
            for option in action.option_strings:
                if option in ("-h", "--help"):
                    continue
                default = None if option in OUTPUT else action.default
                shape = (action.dest, default, action.metavar, action.type)
                assert seen.setdefault(option, shape) == shape, (name, option)


def test_fix_takes_the_limit_flags(enhancer_path: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fixed"
    code = main(["fix", str(enhancer_path), "--target", "tflite-fp16", "-o", str(out),
                 "--max-delta-e", "1.2", "--max-delta-e-p95", "4.5", "--max-channel-bias", "2.5",
                 "--quiet"])
    capsys.readouterr()
    assert code == 0
    thresholds = json.loads((out / "report.json").read_text())["thresholds"]
    assert (thresholds["max_delta_e"], thresholds["max_delta_e_p95"],
            thresholds["max_channel_bias"]) == (1.2, 4.5, 2.5)


def _input_scale(path: Path) -> float:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=path.read_bytes())
    return float(interpreter.get_input_details()[0]["quantization"][0])


def test_convert_honours_tool_qcheck(enhancer_path: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """``input_range`` from ``[tool.qcheck]`` reaches the converter: a 0:255 input quantizes
    with a step 255 times as wide as a 0:1 one."""
    monkeypatch.chdir(tmp_path)
    assert main(["convert", str(enhancer_path), "--target", "tflite-int8", "-o", "unit.tflite"]) \
        == 0
    (tmp_path / "pyproject.toml").write_text('[tool.qcheck]\ninput_range = "0:255"\n')
    assert main(["convert", str(enhancer_path), "--target", "tflite-int8", "-o", "wide.tflite"]) \
        == 0
    capsys.readouterr()
    ratio = _input_scale(tmp_path / "wide.tflite") / _input_scale(tmp_path / "unit.tflite")
    assert np.isclose(ratio, 255.0, rtol=0.02)


def test_report_states_every_limit_in_force(enhancer_path: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    main(["check", str(enhancer_path), "--targets", "tflite-fp32", "--out", str(out),
          "--no-analysis", "--no-readiness", "--min-class-agreement", "0.95",
          "--max-size-kb", "900", "--quiet"])
    capsys.readouterr()
    thresholds = json.loads((out / "report.json").read_text())["thresholds"]
    assert thresholds == {"max_delta_e": 2.0, "max_delta_e_p95": 5.0, "max_channel_bias": 3.0,
                          "min_sqnr_db": 20.0, "min_class_agreement": 0.95,
                          "max_latency_ms": None, "max_size_kb": 900.0}
