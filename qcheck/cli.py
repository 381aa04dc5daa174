"""The ``qcheck`` command: a thin layer over the library; exit codes are data (``ExitCode``)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from qcheck.config import FileConfig
from qcheck.errors import ExitCode, QcheckError, UsageError, first_line
from qcheck.limits import check_limit
from qcheck.report.core import Report
from qcheck.report.progress import progress_reporter
from qcheck.types import Thresholds

__all__ = ["main"]

_RANGES = ("0:1", "0:255", "-1:1")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2, like every other error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _limit(name: str) -> Callable[[str], float]:
    """An argparse type for the limit ``name``, checked like every other limit."""
    def parse(text: str) -> float:
        try:
            return check_limit(name, text, "")
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc).strip()) from None
    return parse


def _build_parser() -> _Parser:
    parser = _Parser(prog="qcheck", description="Colour-drift checks for quantized Keras image "
                     "models (TFLite and ONNX).")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    check = commands.add_parser("check", help="convert, run and compare every target")
    check.add_argument("model", help="a .keras or .h5 model file")
    _image_options(check, evaluation=True)
    check.add_argument("--targets", metavar="T,...",
                       help="comma-separated targets (see `qcheck targets`)")
    check.add_argument("--out", metavar="DIR", default="qcheck-report",
                       help="output folder (default: qcheck-report)")
    for option in ("--max-delta-e", "--max-delta-e-p95", "--max-channel-bias"):
        check.add_argument(option, type=_limit(option[2:].replace("-", "_")), metavar="X")
    check.add_argument("--max-latency-ms", type=_limit("max_latency_ms"), metavar="MS",
                       help="fail a target whose median latency per image (1 thread, this "
                            "machine's CPU) is above MS")
    check.add_argument("--max-size-kb", type=_limit("max_size_kb"), metavar="KB",
                       help="fail a target whose artifact is larger than KB")
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
    _run_options(check)
    check.set_defaults(handler=_run_check)

    _convert_parser(commands)

    fix = commands.add_parser("fix", help="apply the best verified fix (or, when none passes, "
                              "the planned mixed precision) and write the artifact")
    fix.add_argument("model")
    fix.add_argument("--target", required=True, metavar="T")
    _image_options(fix, evaluation=True)
    fix.add_argument("-o", "--output", required=True, metavar="DIR")
    _run_options(fix)
    fix.set_defaults(handler=_run_fix)

    _explore_parser(commands)
    _plan_parser(commands)
    _zoo_parser(commands)
    targets = commands.add_parser("targets", help="list the targets")
    targets.set_defaults(handler=_run_targets)
    return parser


def _convert_parser(commands: Any) -> None:
    convert = commands.add_parser("convert", help="convert to one target and write the artifact")
    convert.add_argument("model")
    convert.add_argument("--target", required=True, metavar="T")
    _image_options(convert)
    convert.add_argument("--recipe", metavar="FILE",
                         help="rebuild a planned mixed-precision artifact (recipe.json)")
    convert.add_argument("-o", "--output", required=True, metavar="FILE")
    convert.set_defaults(handler=_run_convert)


def _plan_parser(commands: Any) -> None:
    from qcheck.planner import DEFAULT_BUDGET_SECONDS

    plan = commands.add_parser(
        "plan", help="search the cheapest mixed-precision recipe that passes the colour gate")
    plan.add_argument("model")
    plan.add_argument("--target", required=True, metavar="T")
    _image_options(plan, evaluation=True)
    for option in ("--max-delta-e", "--max-delta-e-p95", "--max-channel-bias"):
        plan.add_argument(option, type=_limit(option[2:].replace("-", "_")), metavar="X")
    plan.add_argument("--budget-seconds", type=_limit("budget_seconds"), metavar="N",
                      default=DEFAULT_BUDGET_SECONDS,
                      help=f"stop searching after N seconds (default {DEFAULT_BUDGET_SECONDS:.0f})")
    plan.add_argument("-o", "--output", metavar="DIR", default="qcheck-plan",
                      help="output folder (default: qcheck-plan)")
    _run_options(plan)
    plan.set_defaults(handler=_run_plan)


def _run_plan(args: argparse.Namespace) -> int:
    from qcheck.config import load_config
    from qcheck.planner import plan

    config = load_config()
    with progress_reporter(quiet=args.quiet) as progress:
        outcome = plan(args.model, args.target, calib=args.calib or config.calib,
                       eval=args.eval or config.eval, **_model_settings(args, config),
                       thresholds=_thresholds(args, config), budget_seconds=args.budget_seconds,
                       out=args.output, cache=not args.no_cache, progress=progress)
    result = outcome.report.target(args.target)
    if result.error or outcome.plan is None:
        print(f"{args.target}: {result.error or 'no layers to plan over'}")
        return ExitCode.CRASHED if result.error else ExitCode.FAILED
    print(f"{args.target}: {outcome.plan.summary}")
    print(f"plan: {args.output}/plan.html, {args.output}/recipe.json")
    return ExitCode.OK if outcome.passed else ExitCode.FAILED


def _zoo_parser(commands: Any) -> None:
    zoo = commands.add_parser("zoo", help="check a whole catalogue of models (locally or on Ray)")
    zoo.add_argument("catalogue", metavar="MANIFEST|DIR",
                     help="a qcheck-zoo.toml, or a folder of .keras/.h5 models")
    zoo.add_argument("--out", metavar="DIR", default="qcheck-zoo",
                     help="output folder (default: qcheck-zoo)")
    zoo.add_argument("--jobs", type=_positive_int, metavar="N",
                     help="local worker processes (default: one per core)")
    zoo.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                     help="run on the Ray cluster at ADDRESS (no ADDRESS: a local Ray)")
    zoo.add_argument("--no-cache", action="store_true",
                     help="neither read nor write the artifact cache (QCHECK_CACHE_DIR)")
    zoo.add_argument("--quiet", action="store_true", help="print nothing on success")
    zoo.set_defaults(handler=_run_zoo)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of at least 1")
    return value


def _run_zoo(args: argparse.Namespace) -> int:
    from qcheck.zoo import zoo

    lines: list[str] = []
    say = lines.append if args.quiet else (lambda line: print(line, flush=True))
    result = zoo(args.catalogue, out=args.out, jobs=args.jobs, ray=args.ray,
                 cache=not args.no_cache, progress=say)
    if not args.quiet or not result.passed:
        for outcome in result.models:
            state = "pass" if outcome.exit_code == 0 else f"exit {outcome.exit_code}"
            print(f"{outcome.model.name}: {state}{': ' + outcome.error if outcome.error else ''}")
        print(f"zoo: {args.out}/index.html, {args.out}/zoo.json, {args.out}/junit.xml "
              f"({result.seconds:.1f} s)")
    return int(result.exit_code)


def _explore_parser(commands: Any) -> None:
    explore = commands.add_parser(
        "explore", help="open Model Explorer on a report's artifact with its drift overlays")
    explore.add_argument("report_dir", metavar="REPORT_DIR",
                         help="an output folder written by `check --explorer`")
    explore.add_argument("--target", metavar="T",
                         help="the target to show (default: the first failing one)")
    explore.add_argument("--no-open", action="store_true",
                         help="print the Model Explorer command instead of running it")
    explore.set_defaults(handler=_run_explore)


def _run_explore(args: argparse.Namespace) -> int:
    from qcheck.report.explore import explorer_command, open_explorer

    command = explorer_command(Path(args.report_dir), args.target)
    print(f"{command.target}: {command}")
    if not args.no_open and not open_explorer(command):
        print("Model Explorer is not installed: `pip install 'qcheck[explorer]'`, then run "
              "the command above")
    return int(ExitCode.OK)


def _image_options(parser: argparse.ArgumentParser, *, evaluation: bool = False) -> None:
    parser.add_argument("--calib", metavar="DIR",
                        help="calibration images (default: bundled set)")
    if evaluation:
        parser.add_argument("--eval", metavar="DIR",
                            help="evaluation images (default: bundled set)")
    parser.add_argument("--input-range", metavar="R", default=None,
                        help=f"value range the model expects: {'|'.join(_RANGES)} (default 0:1)")
    parser.add_argument("--custom-objects", metavar="FILE.py", default=None,
                        help="your own layers and models, in a Python file qcheck runs (an "
                             "explicit opt-in: without it, models with custom code are refused)")


def _run_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by the commands that check (``check`` and ``fix``)."""
    parser.add_argument("--output-range", metavar="R", default=None,
                        help=f"value range of image outputs: {'|'.join(_RANGES)} (default: "
                             "from a final sigmoid or tanh, else the input range)")
    parser.add_argument("--output-kind", metavar="K", default=None,
                        help="image|classes|tensor (default: inferred from the output's shape "
                             "and final activation)")
    parser.add_argument("--min-class-agreement", type=_limit("min_class_agreement"),
                        metavar="X", help="class maps and classifiers: the share of pixels or "
                                          "images whose class must not change (default 0.99)")
    parser.add_argument("--qat", action="store_true",
                        help="also verify quantization-aware training: fine-tunes a copy with "
                             "tensorflow-model-optimization (seconds for a small model)")
    parser.add_argument("--no-cache", action="store_true",
                        help="neither read nor write the artifact cache (QCHECK_CACHE_DIR)")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")


def _run_targets(args: argparse.Namespace) -> int:
    from converters import DEFAULT_TARGETS, TARGETS

    width = max(len(name) for name in TARGETS)
    for name, spec in TARGETS.items():
        marker = "*" if name in DEFAULT_TARGETS else " "
        print(f"{name:<{width}} {marker} {spec.summary}")
    print("(* = default)")
    return ExitCode.OK


def _run_check(args: argparse.Namespace) -> int:
    from converters import DEFAULT_TARGETS
    from qcheck.config import load_config
    from qcheck.pipeline import check
    from qcheck.report.console import print_summary
    from qcheck.report.files import prepare_out_dir
    from qcheck.validate import resolve_targets
    config = load_config()
    thresholds = _thresholds(args, config)
    targets = args.targets.split(",") if args.targets is not None else config.targets
    resolve_targets(targets or DEFAULT_TARGETS)  # a bad list is a usage error before any work
    out = prepare_out_dir(args.out)
    tolerances = config.tolerances()
    with progress_reporter(quiet=args.quiet) as progress:
        report = check(
            args.model,
            calib=args.calib or config.calib,
            eval=args.eval or config.eval,
            targets=targets,
            **_model_settings(args, config),
            thresholds=thresholds,
            analysis=not args.no_analysis,
            readiness=not args.no_readiness,
            analyze_all=args.analyze_all or args.explorer,
            fix_verification=not args.no_fix_verification,
            qat=args.qat,
            baseline=args.baseline,
            save_baseline=args.save_baseline,
            tolerances=tolerances,
            cache=not args.no_cache,
            progress=progress,
        )
    report.write(out, explorer=args.explorer)
    if not args.quiet or not report.passed:
        print_summary(report)
        print(f"report: {out / 'report.json'}, {out / 'report.html'}, {out / 'junit.xml'}")
    return int(report.exit_code)


def _thresholds(args: argparse.Namespace, config: FileConfig) -> Thresholds:
    return config.thresholds(**{name: getattr(args, name, None) for name in _LIMIT_FLAGS})


# The limits a command line may set (``min_sqnr_db`` only in ``[tool.qcheck]``).
_LIMIT_FLAGS = ("max_delta_e", "max_delta_e_p95", "max_channel_bias", "min_class_agreement",
                "max_latency_ms", "max_size_kb")


def _model_settings(args: argparse.Namespace, config: FileConfig) -> dict[str, Any]:
    """How to read the model, from the command line first, then ``[tool.qcheck]``."""
    return {"input_range": args.input_range or config.input_range or "0:1",
            "output_range": getattr(args, "output_range", None) or config.output_range,
            "output_kind": getattr(args, "output_kind", None) or config.output_kind,
            "custom_objects": args.custom_objects}


def _run_fix(args: argparse.Namespace) -> int:
    from qcheck.api import fix
    from qcheck.config import load_config
    from qcheck.report.console import print_summary

    config = load_config()
    with progress_reporter(quiet=args.quiet) as progress:
        report, shipped = fix(args.model, args.target, out=args.output,
                              calib=args.calib or config.calib, eval=args.eval or config.eval,
                              **_model_settings(args, config),
                              thresholds=_thresholds(args, config), qat=args.qat,
                              cache=not args.no_cache, progress=progress)
    if not args.quiet or shipped is None:
        print_summary(report)
    result = report.target(args.target)
    if result.error:
        return ExitCode.CRASHED
    if shipped is None:
        print(f"no verified fix makes {args.target} pass; see {args.output}/report.json")
        return ExitCode.FAILED
    if not args.quiet:
        print(f"{args.target} {_how_fixed(report, args.target)}: wrote {shipped}")
    return ExitCode.OK


def _how_fixed(report: Report, target: str) -> str:
    result = report.target(target)
    if result.passed:
        return "already passes"
    shipped = report.fixes[target].suggestion
    assert shipped.verified is not None
    text = f"fixed by {shipped.action.value} (ΔE {shipped.verified.delta_e_mean:.2f})"
    cheaper = next((s for s in result.suggestions if s.best), None)
    if cheaper is not None and cheaper.action is not shipped.action:
        text += (f"; {cheaper.action.value} also passes if your hardware allows it, but it "
                 f"changes what {target} means")
    return text


def _run_convert(args: argparse.Namespace) -> int:
    from qcheck.api import convert

    path = convert(args.model, args.target, calib=args.calib, out=args.output,
                   input_range=args.input_range or "0:1", custom_objects=args.custom_objects,
                   recipe=args.recipe)
    print(f"wrote {path}")
    return ExitCode.OK


_RANGE_OPTIONS = ("--input-range", "--output-range")


def _joined_ranges(argv: Sequence[str] | None) -> list[str]:
    """``--input-range -1:1`` as typed: argparse would take ``-1:1`` for an option."""
    args = list(sys.argv[1:] if argv is None else argv)
    joined: list[str] = []
    index = 0
    while index < len(args):
        if args[index] in _RANGE_OPTIONS and index + 1 < len(args) \
                and args[index + 1].startswith("-") and ":" in args[index + 1]:
            joined.append(f"{args[index]}={args[index + 1]}")
            index += 2
            continue
        joined.append(args[index])
        index += 1
    return joined


class _Terminated(BaseException):
    """SIGTERM, raised where the main thread is, so every ``with`` block unwinds: workers are
    stopped and the work folder removed."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


@contextlib.contextmanager
def _termination_unwinds() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # paths that are not UTF-8 still print
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    parser = _build_parser()
    try:
        with _termination_unwinds():
            return _dispatch(parser, parser.parse_args(_joined_ranges(argv)))
    except QcheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("error: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except Exception as exc:  # a bug in qcheck: still one line, unless asked for the trace
        if os.environ.get("QCHECK_DEBUG"):
            raise
        print(f"error: internal error ({type(exc).__name__}: {first_line(exc)}); rerun with "
              "QCHECK_DEBUG=1 for the traceback and please report it", file=sys.stderr)
        return int(ExitCode.CRASHED)


def _dispatch(parser: _Parser, args: argparse.Namespace) -> int:
    if args.version:
        from qcheck.version import __version__

        print(f"qcheck {__version__}")
        return ExitCode.OK
    if args.command is None:
        parser.print_help()
        return ExitCode.USAGE
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
