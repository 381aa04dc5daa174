"""The command line's shape: every command is assembled from the same flag groups, so a flag
means one thing, with one help text, wherever it appears (Polygraphy's argument groups)."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import Any, NoReturn

from qcheck.errors import UsageError
from qcheck.limits import check_limit

__all__ = ["GROUPS", "LIMIT_FLAGS", "RANGES", "build_parser"]

RANGES = ("0:1", "0:255", "-1:1")
# The limits a command line may set (``min_sqnr_db`` only in ``[tool.qcheck]``).
LIMIT_FLAGS = ("max_delta_e", "max_delta_e_p95", "max_channel_bias", "min_class_agreement",
               "max_latency_ms", "max_size_kb")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2, like every other error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


@functools.cache
def _limit(name: str) -> Callable[[str], float]:
    """An argparse type for the limit ``name``, checked like every other limit (one per name,
    so every command's flag has the very same type)."""
    def parse(text: str) -> float:
        try:
            return check_limit(name, text, "")
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc).strip()) from None
    return parse


def _model_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model", "how to read the model (else [tool.qcheck])")
    group.add_argument("--input-range", metavar="R",
                       help=f"value range the model expects: {'|'.join(RANGES)} (default 0:1)")
    group.add_argument("--output-range", metavar="R",
                       help=f"value range of image outputs: {'|'.join(RANGES)} (default: from a "
                            "final sigmoid or tanh, else the input range)")
    group.add_argument("--output-kind", metavar="K",
                       help="image|classes|tensor, or per output NAME=KIND,… (default: inferred "
                            "from each output's shape and final activation)")
    group.add_argument("--feed", metavar="NAME=DIR|VALUE", action="append",
                       help="what a model's input beyond the image input is fed: a folder with a "
                            "file per image (PNG or .npy, named like the image) or a constant; "
                            "once per input")
    group.add_argument("--input-size", metavar="HxW",
                       help="the size a model with no fixed input size is converted and measured "
                            "at (default: the model's own size, else 128x128)")
    group.add_argument("--custom-objects", metavar="FILE.py",
                       help="your own layers and models, in a Python file qcheck runs (an "
                            "explicit opt-in: without it, models with custom code are refused)")


def _image_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("images", "the images to calibrate and evaluate on")
    group.add_argument("--calib", metavar="DIR", help="calibration images (default: bundled set)")
    group.add_argument("--eval", metavar="DIR",
                       help="evaluation images (default: bundled set; never used to calibrate)")


def _limit_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("limits", "what a target must reach to pass")
    group.add_argument("--max-delta-e", type=_limit("max_delta_e"), metavar="X",
                       help="mean CIEDE2000 ΔE (default 2)")
    group.add_argument("--max-delta-e-p95", type=_limit("max_delta_e_p95"), metavar="X",
                       help="95th-percentile ΔE (default 5)")
    group.add_argument("--max-channel-bias", type=_limit("max_channel_bias"), metavar="X",
                       help="mean signed tint per channel, 8-bit levels (default 3)")
    group.add_argument("--min-class-agreement", type=_limit("min_class_agreement"),
                       metavar="X", help="class maps and classifiers: the share of pixels or "
                                         "images whose class must not change (default 0.99)")
    group.add_argument("--max-latency-ms", type=_limit("max_latency_ms"), metavar="MS",
                       help="fail a target whose median latency per image (1 thread, this "
                            "machine's CPU) is above MS")
    group.add_argument("--max-size-kb", type=_limit("max_size_kb"), metavar="KB",
                       help="fail a target whose artifact is larger than KB")


def _output_flags(default: str | None, what: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("output")
        text = f"{what} (default: {default})" if default else f"{what} (required)"
        group.add_argument("-o", "--out", "--output", dest="out", metavar="PATH",
                           default=default, required=default is None, help=text)
    return add


def _run_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("run")
    group.add_argument("--no-cache", action="store_true",
                       help="neither read nor write the artifact cache (QCHECK_CACHE_DIR)")
    group.add_argument("--quiet", action="store_true", help="print nothing on success")


# The groups by name; ``COMMANDS`` says which each command takes.
GROUPS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "model": _model_flags, "images": _image_flags, "limits": _limit_flags, "run": _run_flags,
}
_OUTPUTS = {
    "check": ("qcheck-report", "output folder"),
    "fix": (None, "output folder: the shipped artifact and its report"),
    "plan": ("qcheck-plan", "output folder"),
    "convert": (None, "the artifact file to write (never overwritten)"),
    "zoo": ("qcheck-zoo", "output folder"),
}


def _command(commands: Any, name: str, help_text: str, *, model: str = "model",
             model_metavar: str = "MODEL",
             model_help: str = "a .keras or .h5 model file") -> argparse.ArgumentParser:
    """A command with every shared group: the model (or catalogue) first, then its flags."""
    parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text,
                                                          description=help_text)
    parser.add_argument(model, metavar=model_metavar, help=model_help)
    for add in GROUPS.values():
        add(parser)
    _output_flags(*_OUTPUTS[name])(parser)
    parser.set_defaults(command=name)
    return parser


def _check_flags(check: argparse.ArgumentParser) -> None:
    check.add_argument("--targets", metavar="T,...",
                       help="comma-separated targets (see `qcheck targets`)")
    check.add_argument("--no-readiness", action="store_true",
                       help="skip latency, memory, reference kernels and op coverage")
    check.add_argument("--baseline", metavar="FILE",
                       help="fail (exit 1) when a metric is worse than in this baseline")
    check.add_argument("--save-baseline", metavar="FILE",
                       help="store this run's metrics and output digests as a baseline")
    check.add_argument("--no-analysis", action="store_true",
                       help="skip findings and attribution (fastest)")
    check.add_argument("--analyze-all", action="store_true",
                       help="attribute drift for every target, not only failing ones")
    check.add_argument("--no-fix-verification", action="store_true",
                       help="suggest fixes without converting again to verify them")
    check.add_argument("--explorer", action="store_true",
                       help="attribute every target and write Model Explorer overlays "
                            "(artifacts/explorer/<target>.<overlay>.json)")


def _qat_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--qat", action="store_true",
                        help="also verify quantization-aware training: fine-tunes a copy with "
                             "tensorflow-model-optimization (seconds for a small model)")


def _target_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", required=True, metavar="T",
                        help="one target (see `qcheck targets`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qcheck", description="Colour-drift checks for quantized Keras image "
                     "models (TFLite and ONNX).")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    check = _command(commands, "check", "convert, run and compare every target")
    _check_flags(check)
    _qat_flag(check)

    convert = _command(commands, "convert", "convert to one target and write the artifact")
    _target_flag(convert)
    convert.add_argument("--recipe", metavar="FILE",
                         help="rebuild a planned mixed-precision artifact (recipe.json)")

    fix = _command(commands, "fix", "apply the best verified fix (or, when none passes, the "
                   "planned mixed precision) and write the artifact")
    _target_flag(fix)
    _qat_flag(fix)

    plan = _command(commands, "plan",
                    "search the cheapest mixed-precision recipe that passes the colour gate")
    _target_flag(plan)
    _budget_flag(plan)

    zoo = _command(commands, "zoo", "check a whole catalogue of models (locally or on Ray); "
                   "model, image and limit flags win over the catalogue's own settings",
                   model="catalogue", model_metavar="MANIFEST|DIR",
                   model_help="a qcheck-zoo.toml, or a folder of .keras/.h5 models")
    zoo.add_argument("--targets", metavar="T,...",
                     help="comma-separated targets for every model (else each model's own)")
    zoo.add_argument("--jobs", type=_positive_int, metavar="N",
                     help="local worker processes (default: one per core)")
    zoo.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                     help="run on the Ray cluster at ADDRESS (no ADDRESS: a local Ray)")

    _explore_parser(commands)
    targets = commands.add_parser("targets", help="list the targets")
    targets.set_defaults(command="targets")
    return parser


def _budget_flag(plan: argparse.ArgumentParser) -> None:
    from qcheck.planner.search import DEFAULT_BUDGET_SECONDS

    plan.add_argument("--objective", metavar="O",
                      help="latency|size|balanced: what to prefer among passing recipes "
                           "(default balanced: the fastest within 10%% of the smallest size)")
    plan.add_argument("--budget-seconds", type=_limit("budget_seconds"), metavar="N",
                      default=DEFAULT_BUDGET_SECONDS,
                      help=f"stop searching after N seconds (default {DEFAULT_BUDGET_SECONDS:.0f})")


def _explore_parser(commands: Any) -> None:
    explore = commands.add_parser(
        "explore", help="open Model Explorer on a report's artifact with its drift overlays")
    explore.add_argument("report_dir", metavar="REPORT_DIR",
                         help="an output folder written by `check --explorer`")
    explore.add_argument("--target", metavar="T",
                         help="the target to show (default: the first failing one)")
    explore.add_argument("--no-open", action="store_true",
                         help="print the Model Explorer command instead of running it")
    explore.set_defaults(command="explore")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of at least 1")
    return value
